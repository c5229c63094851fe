"""The agent episode engine (agents/episode.py, run.py, tools.py) driven in-process
against the scripted chat STAND-IN (recorded completions, named as such): conversation
bookkeeping, tool calls executed and answered, bad model output, caps, resume. The real
sandbox runs the Python; the flows with Prefect, the real vLLM and the real Lean are
tests/agents/test_agent_flows.py."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

import pytest

from proofflow.agents import inprocess
from proofflow.agents.episode import ANSWERED, CONTEXT_LENGTH, MAX_TURNS, Caps, conversation, load_episode
from proofflow.agents.inprocess import Stored
from proofflow.agents.run import Executor, ToolOutcome
from proofflow.agents.standard_tools import RUN_PYTHON, python_executor
from proofflow.agents.tools import ToolSpec
from proofflow.config import EndpointConfig, SamplingConfig
from proofflow.llm.client import ModelClient
from proofflow.testing.scripted_chat import Reply, Script, ScriptedChatServer

RUN, PID = "r_test", "p_test"
OPENING = [{"role": "system", "content": "Use tools."}, {"role": "user", "content": "What is 6*7?"}]
TOOLS = {RUN_PYTHON.name: RUN_PYTHON}


def _call(name: str, arguments: str, call_id: str = "call_1") -> dict[str, Any]:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


def drive(client: ModelClient, caps: Caps, stored: Stored | None = None, executors: Mapping[str, Executor] | None
          = None, tools: Mapping[str, ToolSpec] = TOOLS, stop_after: int | None = None) -> Stored:
    executors = executors if executors is not None else {"run_python": python_executor(10.0)}
    return inprocess.drive(client, caps, OPENING, tools, executors, RUN, PID, stored=stored, stop_after=stop_after)


@pytest.fixture()
def server() -> Iterator[tuple[Script, ModelClient]]:
    script = Script()
    with ScriptedChatServer(script) as srv:
        client = ModelClient(EndpointConfig(model="scripted", base_urls=[srv.base_url], max_retries=0),
                             SamplingConfig(max_tokens=64))
        try:
            yield script, client
        finally:
            client.close()


def test_tool_call_executed_answered_and_conversation_rebuilt(server: tuple[Script, ModelClient]) -> None:
    """OpenAI protocol: the model calls run_python; the real sandbox runs it; the output
    goes back as a tool message; the model answers. The conversation rebuilt from the rows
    equals what the server received, and each request's messages are a prefix of the next."""
    script, client = server
    script.replies = [
        Reply(turn=0, content="Let me compute.", tool_calls=[_call("run_python", json.dumps({"code": "print(6*7)"}))]),
        Reply(turn=1, content="The answer is \\boxed{42}."),
    ]
    caps = Caps(protocol="openai", max_turns=4)
    stored = drive(client, caps)
    assert stored.ended is not None and stored.ended.ended == ANSWERED and stored.ended.turns == 2
    (run,) = stored.runs.values()
    assert (run.tool, run.outcome, run.output, run.tool_call_id) == ("run_python", "ok", "42", "call_1")
    second = script.received[1]["messages"]
    assert second[-1] == {"role": "tool", "tool_call_id": "call_1", "content": "42"}
    assert second[:len(script.received[0]["messages"])] == script.received[0]["messages"]
    assert script.received[1]["tools"][0]["function"]["name"] == "run_python"
    episode = load_episode(RUN, PID, 0, stored.samples, stored.runs, stored.ended)
    rebuilt = conversation(episode, caps.protocol)
    assert rebuilt[:len(second)] == second
    assert rebuilt[-1] == {"role": "assistant", "content": "The answer is \\boxed{42}."}
    turns = sorted((s for s in stored.samples.values() if s.stage == "turn"), key=lambda s: s.round)
    assert [t.round for t in turns] == [0, 1] and turns[1].parent_id == turns[0].sample_id
    assert all(t.prompt_tokens and t.prompt_tokens > 0 for t in turns)
    candidate = next(s for s in stored.samples.values() if s.stage == "answer")
    assert candidate.completion == "The answer is \\boxed{42}." and candidate.parent_id == turns[1].sample_id


def test_text_protocol_blocks_are_calls_and_results_return_as_user_message(
        server: tuple[Script, ModelClient]) -> None:
    script, client = server
    script.replies = [Reply(turn=0, content="```python\nprint(sum(range(10)))\n```"),
                      Reply(turn=1, content="So \\boxed{45}")]
    stored = drive(client, Caps(protocol="text"))
    follow = script.received[1]["messages"][-1]
    assert follow["role"] == "user" and "45" in follow["content"] and "run_python" in follow["content"]
    assert "tools" not in script.received[0]
    assert stored.ended is not None and stored.ended.ended == ANSWERED


@pytest.mark.parametrize("call, expect", [
    (_call("run_python", '{"code": "print(1)"'), "not valid JSON"),
    (_call("rm_rf", '{"path": "/"}'), "unknown tool 'rm_rf'"),
    (_call("run_python", '{"code": 7}'), "must be a string, not int"),
    (_call("run_python", json.dumps({"code": "x = 1\n" * 200_000})), "the limit is 20,000"),
])
def test_bad_tool_calls_are_errors_returned_to_the_model(server: tuple[Script, ModelClient],
                                                        call: dict[str, Any], expect: str) -> None:
    script, client = server
    script.replies = [Reply(turn=0, content="", tool_calls=[call]), Reply(turn=1, content="\\boxed{1}")]
    ran: list[Any] = []
    stored = drive(client, Caps(protocol="openai"), executors={"run_python": lambda a: ran.append(a) or
                                                                ToolOutcome("ran")})
    (run,) = stored.runs.values()
    assert run.outcome == "refused" and expect in (run.error or "") and not ran
    assert script.received[1]["messages"][-1]["content"].startswith("Tool error:")
    assert len(run.input or "") <= 20_000  # 1 MB of code is not stored whole
    assert stored.ended is not None and stored.ended.ended == ANSWERED


def test_calls_over_the_per_tool_limit_are_refused(server: tuple[Script, ModelClient]) -> None:
    script, client = server
    script.default = Reply(content="```python\nprint(1)\n```\n```python\nprint(2)\n```")
    stored = drive(client, Caps(protocol="text", max_turns=2, max_calls_per_tool=3),
                   executors={"run_python": lambda a: ToolOutcome("out")})
    outcomes = [r.outcome for r in sorted(stored.runs.values(), key=lambda r: (r.turn, r.call_index))]
    assert outcomes == ["ok", "ok", "ok", "refused"]
    assert stored.ended is not None and stored.ended.ended == MAX_TURNS


def test_a_conversation_longer_than_the_context_ends_cleanly(server: tuple[Script, ModelClient]) -> None:
    script, client = server
    script.default = Reply(content="```python\nprint('x' * 5000)\n```")
    stored = drive(client, Caps(protocol="text", max_turns=10, context_tokens=600, max_output_chars=3000,
                                max_tokens_per_turn=64), executors={"run_python": lambda a: ToolOutcome("x" * 5000)})
    assert stored.ended is not None and stored.ended.ended == CONTEXT_LENGTH and stored.ended.turns == 1


def test_token_budget_per_problem_and_turn_budget(server: tuple[Script, ModelClient]) -> None:
    script, client = server
    script.default = Reply(content="```python\nprint(1)\n```")
    stored = drive(client, Caps(protocol="text", max_turns=50, max_tokens_per_problem=40, max_tokens_per_turn=30),
                   executors={"run_python": lambda a: ToolOutcome("1")})
    assert stored.ended is not None and stored.ended.ended == "token_budget"
    assert all(body["max_tokens"] <= 30 for body in script.received)


def test_resume_after_a_tool_ran_asks_nothing_twice(server: tuple[Script, ModelClient]) -> None:
    """Stop after turn 0 and its tool run (as a killed run would have stored them); the
    resumed episode asks only turn 1 and runs no tool again, and ends with the rows of an
    uninterrupted run (same ids, same texts)."""
    script, client = server
    script.replies = [Reply(turn=0, content="```python\nprint(6*7)\n```"), Reply(turn=1, content="\\boxed{42}")]
    ran: list[str] = []

    def tool(args: Mapping[str, Any]) -> ToolOutcome:
        ran.append(str(args["code"]))
        return ToolOutcome("42")

    caps = Caps(protocol="text")
    partial = drive(client, caps, executors={"run_python": tool}, stop_after=2)
    assert len(script.received) == 1 and len(ran) == 1 and partial.ended is None
    resumed = drive(client, caps, stored=partial, executors={"run_python": tool})
    assert len(script.received) == 2 and len(ran) == 1
    clean = drive(client, caps, executors={"run_python": tool})
    assert sorted(resumed.samples) == sorted(clean.samples) and sorted(resumed.runs) == sorted(clean.runs)
    assert [resumed.samples[k].completion for k in sorted(clean.samples)] == \
        [clean.samples[k].completion for k in sorted(clean.samples)]


def test_task_runs_are_named_with_the_turn() -> None:
    from proofflow.agents.episode import Ask, End
    from proofflow.agents.stages import label
    from proofflow.config import Settings
    from proofflow.problems.answer_set import Problem
    from proofflow.tasks.context import RunContext, WorkItem

    ctx = RunContext("r", "run", "gsm8k", Settings())
    item = WorkItem(Problem(id="p", source="f", source_id="gsm8k-3", statement="q", reference_answer="1"))
    ask = Ask(3, "s", "t", [], [], 64)
    assert label(ctx, item, 1, ask) == f"turn 3 · gsm8k · {ctx.model} · gsm8k-3 · episode 1"
    assert label(ctx, item, 0, End("max_turns")).startswith("end (max_turns) · gsm8k")
