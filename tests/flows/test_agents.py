"""The agent strategies end to end: `solve --strategy tir` and `prove --strategy agent`
through the real Prefect flows, the real DuckDB writer, the real sandbox and the real wasm
Lean. Model answers come from the scripted chat STAND-IN (recorded completions, written
here) where a specific path is needed, and from the REAL vLLM started for agents
(tests/agents/conftest.py) where the pipeline must work with a real model: there the
135M model rarely uses a tool well, so the assertions are on structure and bookkeeping,
and on the conversation rebuilt from the database equalling what the server received."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from proofflow.agents.transcript import messages as rebuilt_messages
from proofflow.flows.solve import run_solve
from proofflow.storage.conversations import problem_conversations
from proofflow.storage.db import Store
from proofflow.testing.scripted_chat import Reply, Script, ScriptedChatServer, tir_script

pytestmark = [pytest.mark.prefect, pytest.mark.slow]


def q(db: Path, sql: str) -> list[tuple[Any, ...]]:
    return Store(db).query(sql)[1]


def problem_file(tmp_path: Path, n: int = 2) -> Path:
    path = tmp_path / "sixes.jsonl"
    path.write_text("".join(json.dumps({"id": f"p{i}", "problem": f"What is 6 * 7 + {i} - {i}?", "answer": "42"})
                            + "\n" for i in range(n)))
    return path


def tir_settings(url: str, db: Path, model: str = "scripted", **tir: object) -> dict[str, object]:
    return {"endpoint.model": model, "endpoint.base_urls": [url], "endpoint.max_retries": 0,
            "storage.db_path": str(db), "storage.flush_interval_s": 0.05, "solve.strategy": "tir",
            "solve.tir": {"episodes": 2, "max_turns": 3, "max_tokens_per_turn": 64, **tir}}


def sent_equals_stored(db: Path, run: str, received: list[dict[str, Any]]) -> None:
    """Every request the server received is a prefix of the conversation rebuilt from the
    database, cut just before one of its assistant turns, and every turn was received."""
    store = Store(db)
    record = store.get_run(run)
    assert record is not None
    expected = []
    for (pid,) in q(db, f"SELECT DISTINCT problem_id FROM samples WHERE run_id = '{record.run_id}' "
                        "AND stage = 'turn'"):
        for conversation in rebuilt_messages(problem_conversations(store, record.run_id, pid), record.run_id).values():
            cuts = [i for i, m in enumerate(conversation) if m["role"] == "assistant"]
            expected += [json.dumps(conversation[:i], sort_keys=True) for i in cuts]
    assert sorted(expected) == sorted(json.dumps(body["messages"], sort_keys=True) for body in received)


def test_tir_with_a_tool_call_executed_answered_voted_and_resumed(prefect_api: str, tmp_path: Path) -> None:
    """Scripted: turn 0 writes a ```python block, the real sandbox runs it, its output
    goes back, turn 1 answers \\boxed{42}. Two problems × two episodes: everything stored,
    graded and voted; the conversations rebuilt from the database are what was sent; a
    rerun asks nothing."""
    db = tmp_path / "tir.duckdb"
    script = tir_script(1)
    with ScriptedChatServer(script) as srv:
        summary = run_solve(str(problem_file(tmp_path)), "tir-scripted", overrides=tir_settings(srv.base_url, db))
        assert summary["problems"] == 2 and summary["done"] == 2 and summary["solved"] == 2
        assert q(db, "SELECT count(*), count(DISTINCT parent_id) FROM samples WHERE stage = 'turn'") == [(8, 4)]
        assert q(db, "SELECT tool, outcome, output, count(*) FROM tool_runs GROUP BY ALL") == [
            ("run_python", "ok", "0", 4)]
        assert q(db, "SELECT ended, count(*) FROM episodes GROUP BY ALL") == [("answered", 4)]
        assert q(db, "SELECT count(*) FROM samples s JOIN verdicts v USING (sample_id) "
                     "WHERE s.stage = 'answer' AND v.verifier = 'answer' AND v.outcome = 'pass'") == [(4,)]
        assert q(db, "SELECT selected_answer, n_samples, n_passed FROM results") == [("42", 2, 2)] * 2
        assert q(db, "SELECT episodes, solved_episodes, pass_at_1, turns_to_solve FROM v_agent_summary") == [
            (4, 4, 1.0, 2.0)]
        assert q(db, "SELECT k, pass_at_k FROM pf_pass_at_k_run(['answer']) ORDER BY k") == [(1, 1.0), (2, 1.0)]
        sent_equals_stored(db, "tir-scripted", script.received)
        asked = len(script.received)
        again = run_solve(str(problem_file(tmp_path)), "tir-scripted", overrides=tir_settings(srv.base_url, db))
        assert again["done"] == 2 and len(script.received) == asked


def _rows(db: Path) -> dict[str, list[tuple[Any, ...]]]:
    return {
        "turns": q(db, "SELECT sample_id, parent_id, idx, round, completion, prompt FROM samples "
                       "WHERE stage = 'turn' ORDER BY sample_id"),
        "tools": q(db, "SELECT tool_run_id, sample_id, tool, input, output, outcome FROM tool_runs ORDER BY 1"),
        "episodes": q(db, "SELECT problem_id, episode, turns, tool_calls, ended, candidate_sample_id FROM episodes "
                          "ORDER BY 1, 2"),
        "candidates": q(db, "SELECT sample_id, completion FROM samples WHERE stage = 'answer' ORDER BY 1"),
        "verdicts": q(db, "SELECT sample_id, verifier, outcome FROM verdicts ORDER BY 1, 2"),
        "results": q(db, "SELECT problem_id, selected_answer, n_samples, n_passed FROM results ORDER BY 1"),
    }


def test_sigkill_after_a_tool_ran_resumes_with_a_clean_runs_rows(prefect_api: str, tmp_path: Path) -> None:
    """The CLI (a real subprocess) is SIGKILLed while turn 1 is being asked — turn 0 and
    its tool run are stored. The resumed run asks only turn 1, runs no tool again, and
    ends with exactly the rows of a clean run."""
    config = tmp_path / "tir.toml"
    config.write_text("[solve]\nstrategy = \"tir\"\n[solve.tir]\nepisodes = 1\nmax_turns = 3\n"
                      "max_tokens_per_turn = 64\n")
    problems = problem_file(tmp_path, 1)
    db = tmp_path / "killed.duckdb"
    script = tir_script(1)
    script.replies[1].delay_s = 300.0  # turn 1 hangs: the kill lands between the tool and the next turn
    with ScriptedChatServer(script) as srv:
        env = {**os.environ, "PREFECT_API_URL": prefect_api}
        proc = subprocess.Popen(
            [sys.executable, "-m", "proofflow.cli", "solve", str(problems), "--config", str(config), "--model",
             "scripted", "--base-url", srv.base_url, "--db", str(db), "--run", "killed"],
            cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            deadline = time.monotonic() + 180
            while len(script.received) < 2:  # turn 1 asked: turn 0's tool run was handed to the writer
                assert proc.poll() is None, "the CLI ended before turn 1"
                assert time.monotonic() < deadline, "turn 1 was never asked"
                time.sleep(0.2)
            time.sleep(1.0)
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
        script.replies[1].delay_s = 0.0
        overrides = {"endpoint.model": "scripted", "endpoint.base_urls": [srv.base_url], "storage.db_path": str(db),
                     "storage.flush_interval_s": 0.05}
        resumed = run_solve(str(problems), "killed", config_file=str(config), overrides=overrides)
        assert resumed.get("agent_tool_runs", 0) == 0 and resumed.get("agent_turns_asked") == 1
        clean_db = tmp_path / "clean.duckdb"
        run_solve(str(problems), "killed", config_file=str(config), overrides={**overrides,
                                                                               "storage.db_path": str(clean_db)})
    assert _rows(db) == _rows(clean_db)
    assert q(db, "SELECT count(*) FROM tool_runs") == [(1,)] and q(db, "SELECT ended FROM episodes") == [("answered",)]


@pytest.fixture()
def vllm_proxy(agent_vllm: Any) -> Iterator[Any]:
    from proofflow.testing.recording_proxy import RecordingProxy

    with RecordingProxy(agent_vllm.base_url) as proxy:
        yield proxy


@pytest.mark.vllm
def test_tir_on_the_bundled_examples_with_the_real_model(prefect_api: str, tmp_path: Path, vllm_proxy: Any) -> None:
    from proofflow.problems import example_path

    db = tmp_path / "tir-real.duckdb"
    cfg = {**tir_settings(vllm_proxy.base_url, db, model="smollm2-135m-instruct", max_turns=2,
                          max_tokens_per_turn=48), "solve.limit": 2}
    summary = run_solve(str(example_path()), "tir-real", overrides=cfg)
    assert summary["problems"] == 2 and summary["done"] == 2
    assert q(db, "SELECT count(*) FROM episodes") == [(4,)]
    turns = q(db, "SELECT count(*), min(prompt_tokens), count(call_id) FROM samples WHERE stage = 'turn'")[0]
    assert turns[0] == len(vllm_proxy.chat_requests) >= 4 and turns[1] > 0 and turns[2] == turns[0]
    # Every candidate graded, every problem voted; tool runs stored for every call the text protocol found.
    assert q(db, "SELECT count(*) FROM samples s WHERE stage = 'answer' AND NOT EXISTS "
                 "(SELECT 1 FROM verdicts v WHERE v.sample_id = s.sample_id AND v.verifier = 'answer')") == [(0,)]
    assert q(db, "SELECT count(*) FROM results") == [(2,)]
    sent_equals_stored(db, "tir-real", vllm_proxy.chat_requests)



def lean_settings(url: str, model: str, db: Path, **agent: object) -> dict[str, object]:
    return {"endpoint.model": model, "endpoint.base_urls": [url], "endpoint.max_retries": 0,
            "storage.db_path": str(db), "storage.flush_interval_s": 0.05,
            "prove.backend": "lean", "prove.lean_checker": "program", "prove.check_timeout_s": 240,
            "prove.workers": 1, "prove.limit": 1, "prove.strategy": "agent",
            "prove.agent": {"episodes": 1, "max_turns": 3, "max_tokens_per_turn": 64, **agent}}


WRONG = """```lean
theorem linear_two_vars (x y : Int) (h₁ : x + y = 10) (h₂ : x - y = 2) : x = 6 := by
  exact h₁
```"""
FIXED = """```lean
theorem linear_two_vars (x y : Int) (h₁ : x + y = 10) (h₂ : x - y = 2) : x = 6 := by
  omega
```"""


@pytest.mark.lean
def test_agent_fixes_a_lean_proof_on_turn_2_from_the_real_lean_message(prefect_api: str, tmp_path: Path) -> None:
    """Scripted: turn 0 submits a wrong proof; the REAL Lean (wasm) rejects it and its
    message goes back in the conversation; turn 1 submits the fixed proof, the check
    passes the audit and the episode ends `proved`; the candidate is checked and audited
    like every proof (a cache hit: no second Lean run)."""
    from proofflow.flows.prove import run_prove

    db = tmp_path / "agent.duckdb"
    script = Script(replies=[Reply(turn=0, content=WRONG), Reply(turn=1, content=FIXED)])
    with ScriptedChatServer(script) as srv:
        summary = run_prove("lean-examples", "agent-scripted", overrides=lean_settings(srv.base_url, "scripted", db))
    assert summary["done"] == 1 and summary["solved"] == 1
    runs = q(db, "SELECT turn, tool, outcome, output FROM tool_runs ORDER BY turn")
    assert [(t, tool, outcome) for t, tool, outcome, _ in runs] == [(0, "check", "fail"), (1, "check", "pass")]
    lean_message = runs[0][3]
    assert "error at line" in lean_message and "compile_error" in lean_message
    # The real Lean's message is what the model got back on turn 1.
    assert lean_message in script.received[1]["messages"][-1]["content"]
    assert q(db, "SELECT ended, turns, tool_calls FROM episodes") == [("proved", 2, 2)]
    assert q(db, "SELECT v.outcome FROM samples s JOIN verdicts v USING (sample_id) "
                 "WHERE s.stage = 'agent' AND v.verifier = 'formal_audit'") == [("pass",)]
    assert summary.get("cache_hits", 0) >= 1
    sent_equals_stored(db, "agent-scripted", script.received)



@pytest.mark.lean
@pytest.mark.vllm
def test_agent_on_core_lean_with_the_real_model(prefect_api: str, tmp_path: Path, vllm_proxy: Any) -> None:
    from proofflow.flows.prove import run_prove

    db = tmp_path / "agent-real.duckdb"
    cfg = lean_settings(vllm_proxy.base_url, "smollm2-135m-instruct", db, max_turns=2, max_tokens_per_turn=48)
    summary = run_prove("lean-examples", "agent-real", overrides=cfg)
    assert summary["done"] == 1
    (turns,) = q(db, "SELECT count(*) FROM samples WHERE stage = 'turn'")[0]
    assert turns == len(vllm_proxy.chat_requests) >= 1
    assert q(db, "SELECT count(*) FROM episodes") == [(1,)]
    # The candidate was checked and audited by the real Lean, like any proof.
    assert q(db, "SELECT count(*) FROM samples s JOIN verdicts v USING (sample_id) "
                 "WHERE s.stage = 'agent' AND v.verifier = 'formal_audit'") == [(1,)]
    assert q(db, "SELECT count(*) FROM results") == [(1,)]
    sent_equals_stored(db, "agent-real", vllm_proxy.chat_requests)
