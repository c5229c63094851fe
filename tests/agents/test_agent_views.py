"""The agent views (storage/views.sql: v_episodes, v_agent_summary, v_reasoning) over a
real DuckDB file holding episodes made by the engine against the scripted chat STAND-IN
(recorded completions): turns, tool calls by tool, tokens, reasoning share, how each
episode ended, solved from the candidate's ground-truth verdict."""

from __future__ import annotations

import json
from pathlib import Path

from proofflow.agents.episode import Caps
from proofflow.agents.inprocess import Stored, drive
from proofflow.agents.run import ToolOutcome
from proofflow.agents.standard_tools import RUN_PYTHON
from proofflow.config import EndpointConfig, SamplingConfig
from proofflow.llm.client import ModelClient
from proofflow.storage.db import Store
from proofflow.storage.records import ProblemRow, RunProblemRow, RunRow, SampleRow, VerdictRow
from proofflow.testing.scripted_chat import Reply, Script, ScriptedChatServer

RUN, PID = "r_views", "p_views"
OPENING = [{"role": "user", "content": "6*7?"}]


def test_episode_views(tmp_path: Path) -> None:
    script = Script(replies=[
        # episode 0: thinks, calls python, answers right; episode 1: thinking cut by length.
        Reply(when="6*7?", content="<think>six sevens</think>```python\nprint(6*7)\n```"),
        Reply(when="Result of run_python", content="<think>so 42</think>\\boxed{42}"),
    ])
    stored = Stored()
    with ScriptedChatServer(script) as srv:
        client = ModelClient(EndpointConfig(model="scripted", base_urls=[srv.base_url], max_retries=0),
                             SamplingConfig(max_tokens=64))
        try:
            executors = {"run_python": lambda a: ToolOutcome("42")}
            tools = {RUN_PYTHON.name: RUN_PYTHON}
            drive(client, Caps(), OPENING, tools, executors, RUN, PID, stored=stored, episode=0)
            script.replies.insert(0, Reply(when="6*7?", content="<think>let me think about 6", finish_reason="length"))
            drive(client, Caps(), OPENING, tools, executors, RUN, PID, stored=stored, episode=1)
        finally:
            client.close()
    candidates = [s for s in stored.all if isinstance(s, SampleRow) and s.stage == "answer"]
    verdicts = [VerdictRow(sample_id=c.sample_id, verifier="answer", verifier_version="1", run_id=RUN,
                           problem_id=PID, outcome="pass" if "42" in (c.completion or "") else "fail", reason=None,
                           answer=None, feedback=None, details=None, duration_s=0.0) for c in candidates]
    store = Store(tmp_path / "a.duckdb")
    store.write([RunRow(run_id=RUN, name="agent-run", strategy="tir", problem_set="t", model="scripted", config="{}",
                        config_hash="h", code_version="0", status="completed"),
                 RunProblemRow(run_id=RUN, problem_id=PID, position=0, source_id="q1"),
                 ProblemRow(problem_id=PID, source=None, source_id="q1", split=None, kind="answer",
                            statement="6*7?", formal_statement=None, header=None, reference_answer="42",
                            metadata=None), *stored.all, *verdicts])
    with store.connect(read_only=True) as con:
        rows = con.execute("SELECT episode, turns, tool_calls, calls_by_tool, ended, solved, reasoning_tokens, "
                           "budget_exhausted_turns FROM v_episodes ORDER BY episode").fetchall()
        summary = con.execute("SELECT episodes, solved_episodes, pass_at_1, turns_to_solve, budget_exhausted, "
                              "ended FROM v_agent_summary").fetchone()
        reasoning = con.execute(
            "SELECT thinking_samples, budget_exhausted, reasoning_share FROM v_reasoning").fetchone()
    assert rows[0][:3] == (0, 2, 1) and rows[0][3] == {"run_python": 1} and rows[0][4:6] == ("answered", True)
    assert rows[0][6] > 0 and rows[0][7] == 0
    assert rows[1][1:3] == (1, 0) and rows[1][4:6] == ("budget_exhausted", False) and rows[1][7] == 1
    assert summary is not None and summary[:5] == (2, 1, 0.5, 2.0, 1)
    assert summary[5] == {"answered": 1, "budget_exhausted": 1}
    assert reasoning is not None and reasoning[:2] == (3, 1) and 0 < reasoning[2] <= 1
    # The stored turn keeps the answer and the thinking apart.
    first = next(s for s in stored.samples.values() if s.stage == "turn" and s.idx == 0 and s.round == 1)
    assert first.completion == "\\boxed{42}" and first.reasoning == "so 42"
    assert json.loads(first.prompt or "[]")[0]["role"] == "user"

    # The conversation, rebuilt from the database and printed by the CLI.
    from typer.testing import CliRunner

    from proofflow.cli import app

    result = CliRunner().invoke(app, ["show", "agent-run", "--db", str(tmp_path / "a.duckdb"), "--problem", "q1",
                                      "--conversation"], terminal_width=200)
    assert result.exit_code == 0, result.output
    text = result.output
    assert "## episode 0: 2 turns, 1 tool calls, answered" in text
    assert "## episode 1: 1 turns, 0 tool calls, budget_exhausted" in text
    assert "(thinking, not sent back) six sevens" in text and "Result of run_python (block 1):" in text
    assert "[tool run_python #0 · ok" in text
    missing = CliRunner().invoke(app, ["show", "agent-run", "--db", str(tmp_path / "a.duckdb"), "--problem", "nope",
                                       "--conversation"])
    assert missing.exit_code == 1 and "no problem 'nope'" in missing.output
