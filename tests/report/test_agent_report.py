"""`proofflow report` on agent runs, over a real DuckDB file holding episodes the engine
made against the scripted chat STAND-IN (recorded completions) and the real sandbox's
place taken by a fixed tool result: the episode plots are written, the agent grid counts
how episodes ended (budget_exhausted, token_budget) and the token budget's stops of an
answer-strategy run, and report.md holds the chosen problems' conversations — the same
text `proofflow show RUN --problem ID --conversation` prints — turns and tool results in
order."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from proofflow.agents.episode import Caps
from proofflow.agents.inprocess import Stored, drive
from proofflow.agents.run import ToolOutcome
from proofflow.agents.standard_tools import RUN_PYTHON
from proofflow.agents.transcript import render
from proofflow.cli import app
from proofflow.config import EndpointConfig, SamplingConfig
from proofflow.llm.client import ModelClient
from proofflow.report.conversations import collect_conversations
from proofflow.storage import metrics
from proofflow.storage.conversations import problem_conversations
from proofflow.storage.db import Store
from proofflow.storage.records import ProblemRow, ResultRow, RunProblemRow, RunRow, SampleRow, VerdictRow
from proofflow.testing.scripted_chat import Reply, Script, ScriptedChatServer

RUN = "r_agent_report"
PROBLEMS = {"p_q1": ("q1", "6*7?", "42"), "p_q2": ("q2", "7*8?", "56")}
AGENT_PNGS = ["episodes_pass_at_k.png", "turns_per_episode.png", "tokens_per_episode.png",
              "reasoning_share.png", "episode_endings.png"]


def _opening(pid: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": PROBLEMS[pid][1]}]


@pytest.fixture(scope="module")
def agent_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Run `agent-run` (tir): q1 episode 0 thinks, runs python, answers 42 (solved);
    q1 episode 1's thinking is cut by length (budget_exhausted); q2 runs python and its
    token budget ends the episode (token_budget). Run `gvr-run`: one problem whose repairs
    the budget stopped (results.stopped_by)."""
    script = Script(replies=[
        Reply(when="6*7?", content="<think>six sevens</think>```python\nprint(6*7)\n```"),
        Reply(when="7*8?", content="```python\nprint(7*8)\n```"),
        Reply(when="Result of run_python", content="<think>so 42</think>\\boxed{42}"),
    ])
    stored = Stored()
    tools = {RUN_PYTHON.name: RUN_PYTHON}
    with ScriptedChatServer(script) as srv:
        client = ModelClient(EndpointConfig(model="scripted", base_urls=[srv.base_url], max_retries=0),
                             SamplingConfig(max_tokens=64))
        try:
            drive(client, Caps(), _opening("p_q1"), tools, {"run_python": lambda a: ToolOutcome("42")},
                  RUN, "p_q1", stored=stored, episode=0)
            script.replies.insert(0, Reply(when="6*7?", content="<think>let me think about 6", finish_reason="length"))
            drive(client, Caps(), _opening("p_q1"), tools, {"run_python": lambda a: ToolOutcome("42")},
                  RUN, "p_q1", stored=stored, episode=1)
            q2 = Stored()
            drive(client, Caps(max_tokens_per_problem=1), _opening("p_q2"), tools,
                  {"run_python": lambda a: ToolOutcome("56")}, RUN, "p_q2", stored=q2, episode=0)
        finally:
            client.close()
    rows = [*stored.all, *q2.all]
    candidates = [s for s in rows if isinstance(s, SampleRow) and s.stage == "answer"]
    verdicts = [VerdictRow(sample_id=c.sample_id, verifier="answer", verifier_version="1", run_id=RUN,
                           problem_id=c.problem_id, outcome="pass" if "\\boxed{42}" in (c.completion or "") else "fail",
                           reason=None, answer=None, feedback=None, details=None, duration_s=0.0) for c in candidates]
    db = tmp_path_factory.mktemp("agent-report") / "a.duckdb"
    store = Store(db)
    store.write([
        RunRow(run_id=RUN, name="agent-run", strategy="tir", problem_set="t", model="scripted", config="{}",
               config_hash="h", code_version="0", status="completed"),
        RunRow(run_id="r_gvr", name="gvr-run", strategy="generate-verify-repair", problem_set="t", model="m",
               config="{}", config_hash="h2", code_version="0", status="completed"),
        *[ProblemRow(problem_id=pid, source=None, source_id=sid, split=None, kind="answer", statement=q,
                     formal_statement=None, header=None, reference_answer=a, metadata=None)
          for pid, (sid, q, a) in PROBLEMS.items()],
        *[RunProblemRow(run_id=r, problem_id=pid, position=i, source_id=PROBLEMS[pid][0])
          for r in (RUN, "r_gvr") for i, pid in enumerate(PROBLEMS)],
        ResultRow(run_id="r_gvr", problem_id="p_q1", selection="majority", selected_answer=None,
                  selected_sample_id=None, correct=False, solved=False, n_samples=0, n_passed=0,
                  stopped_by="token_budget"),
        *rows, *verdicts])
    metrics.record_candidate_stages(store, "tir", ["answer"])  # what the flow records when a run starts
    return db


def _report(db: Path, out: Path, *args: str) -> str:
    result = CliRunner().invoke(app, ["report", *args, "--db", str(db), "--out", str(out)], terminal_width=200)
    assert result.exit_code == 0, result.output
    return (out / "report.md").read_text(encoding="utf-8")


def _in_order(text: str, parts: list[str]) -> None:
    at = -1
    for part in parts:
        found = text.find(part, at + 1)
        assert found > at, f"{part!r} missing or out of order"
        at = found


def test_agent_report_plots_grid_and_conversations(agent_db: Path, tmp_path: Path) -> None:
    out = tmp_path / "rep"
    md = _report(agent_db, out, "agent-run", "gvr-run", "--conversation", "q1", "--conversation", "unsolved")
    for name in [*AGENT_PNGS, "pass_at_k.png", "tokens_by_stage.png"]:
        data = (out / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000, name
        assert f"]({name})" in md  # linked from report.md
    assert "## Agent episodes and token budgets" in md
    # pass@k over episodes: q1 has 2 episodes (one solved), q2 one (not solved).
    assert [(r["k"], r["pass_at_k"]) for r in metrics.pass_at_k(Store(agent_db), [RUN])] == [(1, 0.25), (2, 1.0)]
    grid = md[md.index("## Agent episodes and token budgets"):]
    assert "| how episodes ended | answered 1, budget_exhausted 1, token_budget 1 | n/a |" in grid
    assert "| episodes ended by the token budget | 1 | 0 |" in grid
    assert "| problems whose repairs the token budget stopped | 0 | 1 |" in grid
    assert "| solved episodes | 1 | n/a |" in grid and "| pass@1 over episodes | 0.333 | n/a |" in grid

    # The conversations: q1 (asked by id, solved), then q2 (the unsolved ones), as `show` prints them.
    convs = md[md.index("## Conversations"):]
    _in_order(convs, ["### `agent-run` · problem `q1` (solved)", "### `agent-run` · problem `q2` (not solved)"])
    store = Store(agent_db)
    for sid in ("q1", "q2"):
        assert render(problem_conversations(store, RUN, sid), RUN).rstrip() in convs
    q1 = convs[:convs.index("problem `q2`")]
    _in_order(q1, ["## episode 0: 2 turns, 1 tool calls, answered", "[user]", "6*7?",
                   "[assistant · turn 0", "(thinking, not sent back) six sevens", "```python", "print(6*7)",
                   "[tool run_python #0 · ok", "[user]", "Result of run_python (block 1):", "42",
                   "[assistant · turn 1", "(thinking, not sent back) so 42", "\\boxed{42}",
                   "## episode 1: 1 turns, 0 tool calls, budget_exhausted", "(thinking, not sent back) let me think"])
    # The transcript's own ``` fences cannot close the block it sits in.
    assert "````text\n## episode 0" in q1
    q2 = convs[convs.index("problem `q2`"):]
    _in_order(q2, ["token_budget", "print(7*8)", "[tool run_python #0 · ok", "Result of run_python (block 1):", "56"])

    # The same text the CLI's `show --conversation` prints.
    shown = CliRunner().invoke(app, ["show", "agent-run", "--db", str(agent_db), "--problem", "q1",
                                     "--conversation"], terminal_width=400)
    assert shown.exit_code == 0 and "[tool run_python #0 · ok" in shown.output
    for line in shown.output.strip().splitlines()[:12]:
        assert line.rstrip() in q1


def test_conversation_choices_and_an_unknown_problem(agent_db: Path, tmp_path: Path) -> None:
    store = Store(agent_db)
    episodes = metrics.episodes(store, [RUN])

    def shown(*wanted: str, cap: int = 5) -> list[str]:
        return [c.problem for c in collect_conversations(store, [RUN], episodes, wanted, cap)]

    assert shown("solved") == ["q1"] and shown("unsolved") == ["q2"] and shown("all") == ["q1", "q2"]
    assert shown("all", cap=1) == ["q1"] and shown("q2", "all") == ["q2", "q1"]  # each once, in the order asked
    assert shown() == []
    bad = CliRunner().invoke(app, ["report", "agent-run", "--db", str(agent_db), "--out", str(tmp_path / "b"),
                                   "--conversation", "nope"], terminal_width=200)
    assert bad.exit_code == 1 and "no run of this report has problem(s) 'nope'" in bad.output
    assert not (tmp_path / "b" / "report.md").exists()


def test_a_report_without_episodes_has_no_agent_plots_and_removes_stale_ones(agent_db: Path, tmp_path: Path) -> None:
    out = tmp_path / "rep"
    _report(agent_db, out, "agent-run")
    assert all((out / name).is_file() for name in AGENT_PNGS)
    md = _report(agent_db, out, "gvr-run")  # an answer-strategy run, into the same folder
    assert not any((out / name).exists() for name in AGENT_PNGS)
    assert "| problems whose repairs the token budget stopped | 1 |" in md  # its budget stop still counted
