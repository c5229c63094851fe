"""Behaviour kept (issue 16): the same seeded commands store the same rows as before the
strategies moved into proofflow/strategies/.

tests/data/behaviour_golden.json was recorded on the code before the move (the same
scenarios, the same stand-in endpoints). Each test re-runs one scenario through the real
flow (real Prefect harness, real DuckDB, real sandbox, real Coq) and asserts
that the sample ids, prompts, completions, verdicts and results are the recorded ones.

The model is a STAND-IN: the instant server (answers drawn from the request's seed, so a
changed seed or prompt changes the completion) or the recorded-completion server (fixed
proofs and sketches written here). Lean DSP is not here: on the wasm Lean it takes over
two minutes (a process start per run); tests/flows/test_prove_lean.py covers that path.
Columns that vary from run to run (timestamps,
latencies, call ids, checker durations and feedback text with temporary paths) are left
out; everything that says what was asked, answered and judged is compared.

Re-record (only when a change of behaviour is intended, and say so in the commit):
    PROOFFLOW_RECORD_GOLDEN=1 python3 -m pytest -q -p no:cacheprovider tests/flows/test_behaviour_kept.py
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flows.test_prove_flow import DSP, coq
from flows.test_prove_flow import problem_file as coq_problems

from proofflow.flows.prove import run_prove
from proofflow.flows.solve import run_solve
from proofflow.problems import example_path
from proofflow.storage.db import Store
from proofflow.testing.instant_server import Behaviour, InstantServer
from proofflow.testing.recorded_server import RecordedServer, Recording

pytestmark = pytest.mark.prefect

GOLDEN = Path(__file__).resolve().parents[1] / "data" / "behaviour_golden.json"
RECORD = os.environ.get("PROOFFLOW_RECORD_GOLDEN") == "1"

SAMPLES_SQL = """SELECT sample_id, stage, parent_id, idx, round, seed, model, prompt, completion,
                        finish_reason, prompt_tokens, completion_tokens
                 FROM samples ORDER BY sample_id"""
VERDICTS_SQL = """SELECT sample_id, verifier, outcome, reason, answer
                  FROM verdicts ORDER BY sample_id, verifier"""
RESULTS_SQL = """SELECT problem_id, selection, selected_answer, selected_sample_id, correct, solved,
                        n_samples, n_passed
                 FROM results ORDER BY problem_id"""


def stored(db: Path) -> dict[str, list[list[Any]]]:
    # Compared as stored: the sandbox's random end marker once leaked into csv repair
    # prompts (a different token each run); it no longer reaches the model.
    store = Store(db)
    return {name: [list(r) for r in store.query(sql)[1]]
            for name, sql in (("samples", SAMPLES_SQL), ("verdicts", VERDICTS_SQL), ("results", RESULTS_SQL))}


# ----------------------------------------------------------------------------- scenarios

class SelfChecking(Behaviour):
    """csv: for the first problem, by the seed, a right answer with a True check or a wrong
    one with a False check; for the others a False check (so they go to repair)."""

    def completion(self, prompt: str, seed: int, index: int) -> str:
        if "2 + 3" in prompt and (seed + index) % 2:
            return "The answer is \\boxed{5}.\n```python\nprint(2 + 3 == 5)\n```"
        return "The answer is \\boxed{6}.\n```python\nprint(2 + 3 == 6)\n```"


class Programs(Behaviour):
    """pot: a program printing the right answer of the first problem, or one that crashes."""

    def completion(self, prompt: str, seed: int, index: int) -> str:
        if (seed + index) % 3:
            return "```python\nprint(2 + 3)\n```"
        return "```python\nprint(1 / 0)\n```"


def solve_run(db: Path, behaviour: Behaviour, strategy: str | None, **extra: object) -> None:
    overrides: dict[str, object] = {
        "storage.db_path": str(db), "storage.flush_interval_s": 0.05,
        "solve.samples": 3, "solve.repair_rounds": 1, "solve.limit": 3, **extra,
    }
    if strategy is not None:  # None: the default strategy, as a user who names none gets it
        overrides["solve.strategy"] = strategy
    with InstantServer(behaviour=behaviour) as srv:
        overrides.update({"endpoint.model": behaviour.model, "endpoint.base_urls": [srv.base_url]})
        run_solve(str(example_path()), "kept-solve", overrides=overrides)


def prove_run(db: Path, problems: str, answers: dict[str, str], **extra: object) -> None:
    overrides: dict[str, object] = {
        "endpoint.model": "recorded", "endpoint.max_retries": 0,
        "storage.db_path": str(db), "storage.flush_interval_s": 0.05, "prove.samples": 1,
        "prove.workers": 1, "prove.problems_in_flight": 2, "prove.hole_budget": 1,
        "sampling.max_tokens": 64, **extra,
    }
    with RecordedServer(Recording(answers=answers)) as srv:
        overrides["endpoint.base_urls"] = [srv.base_url]
        run_prove(problems, "kept-prove", overrides=overrides)


WHOLE_COQ = {
    "Theorem linear_two_vars": coq("""
Theorem linear_two_vars : forall x y : Z, x + y = 10 -> x - y = 2 -> x = 6.
Proof. intros x y h1 h2. lia. Qed.
"""),
    # wrong twice (generate and repair), then the APOLLO repair masks the bad step
    "Theorem consecutive_sum_odd": coq("""
Theorem consecutive_sum_odd : forall n : Z, exists k, n + (n + 1) = 2 * k + 1.
Proof.
  intros n.
  exists n.
  apply Z.no_such_lemma_here.
Qed.
"""),
}
DSP_COQ = DSP  # test_prove_flow's sketches: one closed by automation, one masked first


def scenario_solve_default(tmp: Path, db: Path) -> None:
    solve_run(db, Behaviour(model="instant"), None)


def scenario_solve_csv(tmp: Path, db: Path) -> None:
    solve_run(db, SelfChecking(model="instant"), "csv", **{"solve.selection": "weighted"})


def scenario_solve_pot(tmp: Path, db: Path) -> None:
    solve_run(db, Programs(model="instant"), "pot", **{"solve.limit": 2})


def scenario_prove_coq_whole(tmp: Path, db: Path) -> None:
    prove_run(db, str(coq_problems(tmp, ["linear_two_vars", "consecutive_sum_odd"])), dict(WHOLE_COQ),
              **{"prove.strategy": "whole", "prove.repair_rounds": 1, "prove.repair_depth": 1,
                 "prove.whole.repair_candidates": 1})


def scenario_prove_coq_dsp(tmp: Path, db: Path) -> None:
    prove_run(db, str(coq_problems(tmp, ["am_gm_two", "consecutive_sum_odd"])), dict(DSP_COQ),
              **{"prove.strategy": "dsp"})


NEEDS_COQ = pytest.mark.skipif(shutil.which("coqtop") is None, reason="Coq not installed")
SCENARIOS: list[Any] = [
    pytest.param("solve-default", scenario_solve_default, id="solve-default"),
    pytest.param("solve-csv", scenario_solve_csv, id="solve-csv"),
    pytest.param("solve-pot", scenario_solve_pot, id="solve-pot"),
    pytest.param("prove-coq-whole", scenario_prove_coq_whole, id="prove-coq-whole", marks=NEEDS_COQ),
    pytest.param("prove-coq-dsp", scenario_prove_coq_dsp, id="prove-coq-dsp", marks=NEEDS_COQ),
]


@pytest.mark.parametrize(("name", "scenario"), SCENARIOS)
def test_same_command_stores_the_same_rows(prefect_api: str, tmp_path: Path, name: str,
                                           scenario: Callable[[Path, Path], None]) -> None:
    db = tmp_path / "kept.duckdb"
    scenario(tmp_path, db)
    rows = json.loads(json.dumps(stored(db), default=str))
    assert rows["samples"], "the scenario stored no samples"
    if RECORD:
        golden = json.loads(GOLDEN.read_text()) if GOLDEN.exists() else {}
        golden[name] = rows
        GOLDEN.write_text(json.dumps(golden, indent=1, ensure_ascii=False, sort_keys=True) + "\n")
    golden = json.loads(GOLDEN.read_text())
    assert name in golden, f"{GOLDEN.name} has no recording of {name}"
    for table in ("samples", "verdicts", "results"):
        want, got = golden[name][table], rows[table]
        assert len(got) == len(want), f"{name}: {table}: {len(got)} rows, recorded {len(want)}"
        for g, w in zip(got, want):
            assert g == w, f"{name}: {table} row differs:\n got  {g}\n want {w}"
