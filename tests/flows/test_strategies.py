"""Program-of-thought and code-based self-verification through the solve flow, with the
real sandbox. The model is the STAND-IN instant server answering a fixed text, so each
test knows exactly which program the sandbox runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from proofflow.config import VoteWeights
from proofflow.flows.solve import run_solve
from proofflow.problems import example_path, load_problems
from proofflow.storage.db import Store
from proofflow.storage.records import SampleRow, VerdictRow
from proofflow.tasks.context import WorkItem
from proofflow.tasks.select import majority_vote
from proofflow.testing.instant_server import Behaviour, InstantServer

pytestmark = pytest.mark.prefect

# The first bundled example is "What is 2 + 3?" (answer 5).


def run(text: str, db: Path, strategy: str, **extra: object) -> dict:
    with InstantServer(behaviour=Behaviour(model="instant", text=text)) as srv:
        return run_solve(str(example_path()), strategy, overrides={
            "endpoint.model": "instant", "endpoint.base_urls": [srv.base_url], "storage.db_path": str(db),
            "solve.strategy": strategy, "solve.samples": 2, "solve.repair_rounds": 1, "solve.limit": 1,
            **extra,
        })


def verdicts(db: Path) -> list[tuple]:
    return Store(db).query("""SELECT s.stage, v.verifier, v.outcome, v.reason, v.answer
                              FROM verdicts v JOIN samples s USING (sample_id)
                              ORDER BY s.round, s.idx, v.verifier""")[1]


def test_program_of_thought_runs_the_program_and_checks_its_output(prefect_api: str, tmp_path: Path) -> None:
    db = tmp_path / "pot.duckdb"
    summary = run("Here:\n```python\nx = 2 + 3\nprint(x)\n```", db, "pot")
    assert summary["solved"] == 1
    rows = verdicts(db)
    runs = [r for r in rows if r[1] == "python_exec"]
    assert len(runs) == 2 and all(r[2] == "pass" and r[4] == "5" for r in runs)
    assert all(r[2] == "pass" for r in rows if r[1] == "answer")
    assert not any(r[0] == "repair" for r in rows)  # nothing failed, nothing repaired


def test_program_of_thought_crash_is_a_fail_and_is_repaired(prefect_api: str, tmp_path: Path) -> None:
    db = tmp_path / "pot-crash.duckdb"
    summary = run("```python\nprint(1 / 0)\n```", db, "pot")
    assert summary["solved"] == 0
    rows = verdicts(db)
    runs = [r for r in rows if r[1] == "python_exec"]
    assert runs and all(r[2] == "fail" for r in runs)
    assert {r[0] for r in rows} == {"generate", "repair"}
    _, feedback = Store(db).query("""SELECT s.prompt FROM samples s WHERE s.stage = 'repair' LIMIT 1""")
    assert "ZeroDivisionError" in feedback[0][0]  # the sandbox's stderr went back to the model


def test_csv_self_verification_true_is_stored_and_not_repaired(prefect_api: str, tmp_path: Path) -> None:
    db = tmp_path / "csv.duckdb"
    text = "2 + 3 = 5, so the answer is \\boxed{5}.\n```python\nprint(2 + 3 == 5)\n```"
    summary = run(text, db, "csv", **{"solve.selection": "weighted"})
    rows = verdicts(db)
    assert {(r[1], r[2]) for r in rows} == {("answer", "pass"), ("self_verify", "pass")}
    assert summary["solved"] == 1 and summary["correct"] == 1
    assert not any(r[0] == "repair" for r in rows)


def test_csv_false_sends_to_repair_with_its_output(prefect_api: str, tmp_path: Path) -> None:
    db = tmp_path / "csv-false.duckdb"
    text = "The answer is \\boxed{6}.\n```python\nprint('checking', 2 + 3)\nprint(2 + 3 == 6)\n```"
    run(text, db, "csv")
    rows = verdicts(db)
    assert ("generate", "self_verify", "fail", "check_false", "False") in rows
    repairs = [r for r in rows if r[0] == "repair"]
    assert repairs, "a False self-check must trigger a repair"
    _, prompts = Store(db).query("SELECT prompt FROM samples WHERE stage = 'repair'")
    assert "checking 5" in prompts[0][0]


def test_csv_early_exit_does_not_count_as_verified(prefect_api: str, tmp_path: Path) -> None:
    db = tmp_path / "csv-exit.duckdb"
    text = "\\boxed{6}\n```python\nimport sys\nprint(True)\nsys.exit(0)\nprint(2 + 3 == 6)\n```"
    run(text, db, "csv")
    rows = [r for r in verdicts(db) if r[1] == "self_verify"]
    assert rows and all(r[2] == "fail" and r[3] == "not_checked" for r in rows)


def test_weighted_vote_prefers_verified_answers(tmp_path: Path) -> None:
    """Two samples say 6 (both refuted by their own checks), one says 5 (verified):
    plain majority picks 6, verification-weighted voting picks 5."""
    problem = load_problems(example_path())[0]
    item = WorkItem(problem)

    def add(sid: str, idx: int, answer: str, check: str) -> None:
        item.state.samples[sid] = SampleRow(sid, "r", problem.id, "generate", None, idx, 0, None, None, None,
                                            None, None, None, "", None, None, None, True, None, None)
        for verifier, outcome in (("answer", "fail"), ("self_verify", check)):
            item.state.verdicts[(sid, verifier)] = VerdictRow(sid, verifier, "1", "r", problem.id, outcome,
                                                              None, answer, "", "{}", 0.0)

    add("a", 0, "6", "fail")
    add("b", 1, "6", "fail")
    add("c", 2, "5", "pass")
    assert majority_vote(item)[0] == "6"
    assert majority_vote(item, VoteWeights())[0] == "5"
    assert majority_vote(item, VoteWeights(verified=0.3, refuted=0.2))[0] == "6"
