"""The per-problem token budget of the answer strategies ([solve] max_tokens_per_problem,
`--max-tokens-per-problem`): once a problem's stored samples of the earlier rounds reach it,
no further repair round is asked, and its result says the budget stopped it.

The flow tests run the real CLI / flow under a real Prefect server against the STAND-IN
instant server (answers at once, deterministic in prompt and seed); the planning tests
are the stages as pure functions."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

from proofflow.config import load_settings
from proofflow.flows.common import RunConfigMismatch
from proofflow.flows.solve import run_solve
from proofflow.keys import sample_id
from proofflow.problems import Problem, example_path, load_problems
from proofflow.storage.db import Store
from proofflow.storage.records import SampleRow, VerdictRow
from proofflow.tasks.context import RunContext, WorkItem
from proofflow.tasks.repair import plan_repair, stopped_by_budget, tokens_before
from proofflow.testing.instant_server import Behaviour, InstantServer

RUN = "budget"


def _samples(db: Path) -> dict[str, tuple[str, int, int, str]]:
    """sample_id -> (problem, round, prompt + completion tokens, completion)."""
    _, rows = Store(db).query("SELECT sample_id, problem_id, round, prompt_tokens + completion_tokens, completion "
                              "FROM samples")
    return {r[0]: (r[1], r[2], r[3], r[4]) for r in rows}


def _stopped(db: Path) -> dict[str, str | None]:
    _, rows = Store(db).query("SELECT problem_id, stopped_by FROM results")
    return dict(rows)


@pytest.mark.prefect
def test_the_budget_stops_repair_rounds_and_a_rerun_decides_the_same(prefect_api: str, tmp_path: Path) -> None:
    wrong = Behaviour(model="instant", answers=("-999",))  # every candidate fails: repairs are wanted
    common = ["--model", "instant", "-n", "2", "-r", "2", "--limit", "3", "--run", RUN]
    free_db, budget_db = tmp_path / "free.duckdb", tmp_path / "budget.duckdb"
    with InstantServer(behaviour=wrong) as srv:
        run_solve(str(example_path()), RUN, overrides={
            "endpoint.model": "instant", "endpoint.base_urls": [srv.base_url], "storage.db_path": str(free_db),
            "solve.samples": 2, "solve.repair_rounds": 2, "solve.limit": 3})
        free = _samples(free_db)
        per_round: dict[str, dict[int, int]] = defaultdict(lambda: defaultdict(int))
        for problem, round_, tokens, _ in free.values():
            per_round[problem][round_] += tokens
        assert all(set(r) == {0, 1, 2} for r in per_round.values())  # unbudgeted: every round asked
        # Just over the biggest first round: every problem gets round 1; the one whose
        # first round was biggest certainly cannot have round 2.
        budget = max(r[0] for r in per_round.values()) + 1

        def before(problem: str, round_: int) -> int:
            return sum(t for r, t in per_round[problem].items() if r < round_)

        env = {**os.environ, "PREFECT_API_URL": prefect_api}
        cli = [sys.executable, "-m", "proofflow.cli", "solve", str(example_path()), *common,
               "--base-url", srv.base_url, "--db", str(budget_db), "--max-tokens-per-problem", str(budget)]
        out = subprocess.run(cli, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
        assert out.returncode == 0, out.stdout + out.stderr
        asked = srv.behaviour.requests
        got = _samples(budget_db)
        # Same run name, so same sample ids and seeds: the budgeted run's samples are
        # exactly the unbudgeted run's samples of the rounds the budget allowed.
        expected = {sid for sid, (problem, round_, _, _) in free.items() if before(problem, round_) < budget}
        assert set(got) == expected
        assert {sid: got[sid][3] for sid in got} == {sid: free[sid][3] for sid in expected}
        stopped = {p for p in per_round if any(before(p, r) >= budget for r in (1, 2))}
        assert _stopped(budget_db) == {p: ("token_budget" if p in stopped else None) for p in per_round}
        assert _stopped(free_db) == dict.fromkeys(per_round)
        biggest = max(per_round, key=lambda p: per_round[p][0])
        assert {r for p, r, _, _ in got.values() if p == biggest} == {0, 1}
        assert len(got) < len(free)

        # The same run again (in-process, the flow the CLI ran): nothing is asked, nothing changes.
        settings = {"endpoint.model": "instant", "endpoint.base_urls": [srv.base_url],
                    "storage.db_path": str(budget_db), "solve.samples": 2, "solve.repair_rounds": 2,
                    "solve.limit": 3, "solve.max_tokens_per_problem": budget}
        run_solve(str(example_path()), RUN, overrides=settings)
        assert srv.behaviour.requests == asked
        assert _samples(budget_db) == got and _stopped(budget_db)[biggest] == "token_budget"

        # A different budget is a different run: refused, naming the key, nothing asked.
        with pytest.raises(RunConfigMismatch, match="max_tokens_per_problem"):
            run_solve(str(example_path()), RUN, overrides={**settings, "solve.max_tokens_per_problem": budget * 10})
        assert srv.behaviour.requests == asked


# -- planning, as pure functions ------------------------------------------------------------

def _ctx(**overrides: object) -> RunContext:
    settings = load_settings(overrides={"endpoint.model": "instant", "solve.samples": 2,
                                        "solve.repair_rounds": 2, **overrides})
    return RunContext(RUN, RUN, "examples", settings)


def _problem() -> Problem:
    return load_problems(example_path())[0]  # "What is 2 + 3?" -> 5


def _sample(item: WorkItem, idx: int, tokens: int, stage: str = "generate", parent: str | None = None,
            round_: int = 0, outcome: str = "fail") -> SampleRow:
    sid = sample_id(RUN, item.problem.id, stage, parent, idx)
    row = SampleRow(sid, RUN, item.problem.id, stage, parent, idx, round_, None, "m", None, None, None,
                    "p", "\\boxed{6}", "stop", tokens, 0, True, 0.0, None)
    item.state.samples[sid] = row
    item.state.verdicts[(sid, "answer")] = VerdictRow(
        sample_id=sid, verifier="answer", verifier_version="1", run_id=RUN, problem_id=item.problem.id,
        outcome=outcome, reason=None, answer="6", feedback="wrong", details=None, duration_s=0.0)
    return row


def test_a_round_half_stored_when_the_run_was_killed_is_finished_not_cut() -> None:
    """Only earlier rounds count: a killed run that stored one of round 1's repairs (whose
    tokens reach the budget) still asks the other, as the clean run did."""
    ctx, item = _ctx(**{"solve.max_tokens_per_problem": 100}), WorkItem(_problem())
    a, b = _sample(item, 0, 40), _sample(item, 1, 40)
    assert [p.parent_id for p in plan_repair(ctx, [item], 1)] == [a.sample_id, b.sample_id]
    _sample(item, 0, 500, stage="repair", parent=a.sample_id, round_=1)  # stored before the kill
    assert tokens_before(item, 1) == 80
    assert [p.parent_id for p in plan_repair(ctx, [item], 1)] == [b.sample_id]
    _sample(item, 1, 30, stage="repair", parent=b.sample_id, round_=1)
    assert plan_repair(ctx, [item], 2) == [] and stopped_by_budget(ctx.settings, item)  # round 2 is over it


def test_no_round_once_the_budget_is_spent_and_the_result_says_so() -> None:
    ctx, item = _ctx(**{"solve.max_tokens_per_problem": 80}), WorkItem(_problem())
    _sample(item, 0, 40)
    _sample(item, 1, 40)
    assert plan_repair(ctx, [item], 1) == []
    assert stopped_by_budget(ctx.settings, item)
    # Off (the default): the round is asked and nothing was stopped.
    free = _ctx()
    assert len(plan_repair(free, [item], 1)) == 2 and not stopped_by_budget(free.settings, item)


def test_a_solved_problem_is_not_counted_as_stopped() -> None:
    ctx, item = _ctx(**{"solve.max_tokens_per_problem": 10}), WorkItem(_problem())
    _sample(item, 0, 40, outcome="pass")
    _sample(item, 1, 40)
    assert plan_repair(ctx, [item], 1) == [] and not stopped_by_budget(ctx.settings, item)
