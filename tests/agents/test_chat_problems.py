"""Chat-format problem files (OpenAI evals: {input: [messages], ideal}) load; bad ones
are refused with one line naming the file, line and field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from proofflow.problems.answer_set import load_problems
from proofflow.problems.jsonl import ProblemFileError

FEW_SHOT = [
    {"role": "system", "content": "Answer with \\boxed{}."},
    {"role": "user", "content": "What is 1+1?"},
    {"role": "assistant", "content": "\\boxed{2}"},
    {"role": "user", "content": "What is 2+3?"},
]


def _write(tmp_path: Path, *lines: object) -> Path:
    path = tmp_path / "chat.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


def test_chat_lines_load_with_their_messages(tmp_path: Path) -> None:
    path = _write(tmp_path, {"id": "a", "input": FEW_SHOT, "ideal": "5"},
                  {"input": [{"role": "user", "content": "7*6?"}], "ideal": ["42", "forty-two"]})
    first, second = load_problems(path)
    assert (first.source_id, first.statement, first.reference_answer) == ("a", "What is 2+3?", "5")
    assert first.metadata["messages"] == FEW_SHOT and first.metadata["format"] == "chat"
    assert second.reference_answer == "42" and second.source_id == "line 2"
    # Other few-shot turns make another problem.
    other = _write(tmp_path, {"input": FEW_SHOT[2:], "ideal": "5"})
    assert load_problems(other)[0].id != first.id


@pytest.mark.parametrize("line, field", [
    ({"input": [], "ideal": "1"}, "input"),
    ({"input": [{"role": "robot", "content": "x"}], "ideal": "1"}, "input[0].role"),
    ({"input": [{"role": "user", "content": 3}], "ideal": "1"}, "input[0].content"),
    ({"input": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}], "ideal": "1"}, "input"),
    ({"input": [{"role": "user", "content": "q"}]}, "ideal"),
])
def test_bad_chat_lines_name_line_and_field(tmp_path: Path, line: dict[str, object], field: str) -> None:
    path = _write(tmp_path, {"input": [{"role": "user", "content": "ok"}], "ideal": "1"}, line)
    with pytest.raises(ProblemFileError) as err:
        load_problems(path)
    text = str(err.value)
    assert str(path) in text and "line 2" in text and field in text


def test_chat_messages_start_the_generate_request(tmp_path: Path) -> None:
    """gvr/pot/csv: the file's system prompt and few-shot turns go first; the question is
    the last user turn, in the strategy's own prompt."""
    from proofflow.config import Settings
    from proofflow.tasks.context import RunContext, WorkItem
    from proofflow.tasks.generate import plan_generate

    (problem,) = load_problems(_write(tmp_path, {"id": "a", "input": FEW_SHOT, "ideal": "5"}))
    ctx = RunContext("r_chat", "chat", "chat", Settings())
    (plan,) = plan_generate(ctx, [WorkItem(problem)])
    assert plan.messages[:3] == FEW_SHOT[:3]
    assert plan.messages[3]["role"] == "user" and "What is 2+3?" in plan.messages[3]["content"]
    assert len(plan.messages) == 4 and not plan.one_user_turn
