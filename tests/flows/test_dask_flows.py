"""The solve and prove flows on a REAL Dask LocalCluster (2 worker processes) give the
same stored rows as the thread runner, survive a killed worker, and resume after the
flow's own process is killed.

Real: Dask (LocalCluster, Nanny-managed worker processes), the Prefect test server, DuckDB,
Coq, the Python sandbox. STAND-INs: the model servers (testing/instant_server.py and
testing/recorded_server.py), because the comparisons need exact, seeded completions and
the kill tests need requests that take a known time; the real vLLM server runs the same
flows in test_solve_vllm.py / test_prove_vllm.py (threads) and in the note's CLI runs.
"""

from __future__ import annotations

import json
import logging
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flows.test_prove_flow import problem_file

from proofflow.flows.prove import run_prove
from proofflow.flows.solve import run_solve
from proofflow.problems import example_path
from proofflow.storage.db import Store
from proofflow.testing.instant_server import Behaviour, InstantServer
from proofflow.testing.recorded_server import RecordedServer, Recording

pytestmark = [pytest.mark.prefect, pytest.mark.slow]

FENCE = "```"


@pytest.fixture(scope="module")
def cluster() -> Iterator[Any]:
    """Two worker processes (the 2-core machine is shared: no more)."""
    from distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=4, processes=True, dashboard_address=None,
                      silence_logs=logging.WARNING) as c:
        yield c


def worker_pids(cluster: Any) -> dict[str, int]:
    from distributed import Client

    with Client(cluster) as client:
        return client.run(os.getpid)  # type: ignore[no-any-return]


def stored(db: Path) -> dict[str, Any]:
    """What must not depend on the runner: ids, completions (seeded), verdicts, results."""
    store = Store(db)

    def q(sql: str) -> list[tuple]:
        return store.query(sql)[1]

    return {
        "samples": q("SELECT sample_id, problem_id, stage, parent_id, idx, round, seed, completion "
                     "FROM samples ORDER BY sample_id"),
        "verdicts": q("SELECT sample_id, verifier, outcome, reason, answer FROM verdicts "
                      "ORDER BY sample_id, verifier"),
        "results": q("SELECT problem_id, selection, selected_answer, selected_sample_id, correct, solved, "
                     "n_samples, n_passed FROM results ORDER BY problem_id"),
        "ok_calls": q("SELECT count(*) FROM calls WHERE status = 'ok'")[0][0],
        "duplicate_calls": q("SELECT count(*) - count(DISTINCT (problem_id, stage, seed)) FROM calls "
                             "WHERE status = 'ok'")[0][0],
    }


# csv: its sandbox runs are the work the Dask workers get (model requests and answer
# grading run in the flow's process since issue 19).
CSV: dict[str, Any] = {"solve.strategy": "csv", "solve.samples": 2, "solve.limit": 4}


def stored_count(db: Path, table_where: str) -> int:
    """Rows already in the database (a lower bound on what the flow has stored: rows still
    in the writer's queue or journal are not counted)."""
    if not db.exists():
        return 0
    try:
        return int(Store(db).query(f"SELECT count(*) FROM {table_where}")[1][0][0])
    except Exception:  # a read racing the writer's first flush: count nothing as stored
        return 0


def stored_ok_calls(db: Path) -> int:
    return stored_count(db, "calls WHERE status = 'ok'")


def solve_overrides(url: str, db: Path, **extra: object) -> dict[str, Any]:
    base: dict[str, Any] = {
        "endpoint.model": "instant", "endpoint.base_urls": [url], "endpoint.backoff_s": 0.01,
        "storage.db_path": str(db), "storage.flush_interval_s": 0.05,
        "solve.samples": 3, "solve.repair_rounds": 1, "solve.limit": 6,
    }
    base.update(extra)
    return base


def on_dask(cluster: Any) -> dict[str, Any]:
    return {"runner.kind": "dask", "runner.address": cluster.scheduler_address}


# ------------------------------------------------------------------ same rows as threads

def test_solve_answers_same_rows_as_threads(prefect_api: str, cluster: Any, tmp_path: Path) -> None:
    runs = {}
    for kind, extra in (("threads", {}), ("dask", on_dask(cluster))):
        db = tmp_path / f"{kind}.duckdb"
        with InstantServer() as srv:
            summary = run_solve(str(example_path()), "same", overrides=solve_overrides(srv.base_url, db, **extra))
            runs[kind] = (stored(db), srv.behaviour.requests, summary)
    (threads, t_requests, t_summary), (dask, d_requests, d_summary) = runs["threads"], runs["dask"]
    assert threads["samples"] and threads["verdicts"] and len(threads["results"]) == 6
    assert any(s[2] == "repair" for s in threads["samples"])
    assert dask == threads
    assert d_requests == t_requests == threads["ok_calls"]
    assert d_summary["done"] == t_summary["done"] == 6 and d_summary["solved"] == t_summary["solved"]


class SelfChecking(Behaviour):
    """CSV answers: a boxed number and a program that prints True or False (by seed)."""

    def completion(self, prompt: str, seed: int, index: int) -> str:
        rng = random.Random(f"{seed}:{index}")
        k = rng.choice(["5", "6"])
        verdict = rng.choice(["True", "False", "1/0"])
        return f"The answer is \\boxed{{{k}}}.\n{FENCE}python\nprint('checked {k}')\nprint({verdict})\n{FENCE}"


def test_solve_csv_with_the_sandbox_same_rows_as_threads(prefect_api: str, cluster: Any, tmp_path: Path) -> None:
    runs = {}
    for kind, extra in (("threads", {}), ("dask", on_dask(cluster))):
        db = tmp_path / f"csv-{kind}.duckdb"
        with InstantServer(behaviour=SelfChecking(model="instant")) as srv:
            run_solve(str(example_path()), "csv", overrides=solve_overrides(
                srv.base_url, db, **{"solve.strategy": "csv", "solve.samples": 2, "solve.limit": 4}, **extra))
        runs[kind] = stored(db)
    outcomes = {(v[1], v[2]) for v in runs["threads"]["verdicts"]}
    assert ("self_verify", "pass") in outcomes and ("self_verify", "fail") in outcomes  # the sandbox ran
    assert runs["dask"] == runs["threads"]


def test_prove_coq_same_rows_as_threads(prefect_api: str, cluster: Any, tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """Also: on Dask the flow's process makes no checker. The header check runs where the
    checks do (tasks/check_environment.py), so the flow machine needs no Coq or Lean."""
    from proofflow.tasks import checker_settings

    made: list[str] = []  # checkers made in this (the flow's) process
    real = checker_settings.make_checker
    monkeypatch.setattr(checker_settings, "make_checker", lambda p: made.append(p.backend) or real(p))
    if shutil.which("coqtop") is None:
        pytest.fail("Coq is not installed (scripts/test.sh installs it)")
    problems = problem_file(tmp_path, ["linear_two_vars", "square_nonneg_sum", "diff_of_squares"])
    good = f"{FENCE}coq\nTheorem diff_of_squares : forall a b : Z, (a - b) * (a + b) = a * a - b * b.\n" \
           f"Proof. intros a b. ring. Qed.\n{FENCE}"
    wrong = f"{FENCE}coq\nTheorem linear_two_vars : forall x y : Z, x + y = 10 -> x - y = 2 -> x = 6.\n" \
            f"Proof. intros x y h1 h2. reflexivity. Qed.\n{FENCE}"
    runs, checkers = {}, {}
    for kind, extra in (("threads", {}), ("dask", on_dask(cluster))):
        made.clear()
        db = tmp_path / f"prove-{kind}.duckdb"
        recording = Recording(answers={"Theorem diff_of_squares": good, "Theorem linear_two_vars": wrong})
        with RecordedServer(recording) as srv:
            run_prove(str(problems), "prove", overrides={
                "endpoint.model": "recorded", "endpoint.base_urls": [srv.base_url], "endpoint.max_retries": 0,
                "storage.db_path": str(db), "storage.flush_interval_s": 0.05, "prove.samples": 2,
                "prove.workers": 1, "prove.problems_in_flight": 2, "prove.hole_budget": 1,
                "sampling.max_tokens": 64, **extra})
        runs[kind], checkers[kind] = stored(db), list(made)
    assert checkers == {"threads": ["coq"], "dask": []}  # threads: one, for the header check and the checks
    threads = runs["threads"]
    outcomes = {(v[1], v[2]) for v in threads["verdicts"]}
    assert ("formal_audit", "pass") in outcomes and ("formal_audit", "fail") in outcomes
    assert len(threads["results"]) == 3
    assert runs["dask"] == threads


# ---------------------------------------------------------------------- kill a worker

def test_killed_worker_run_completes_nothing_lost_or_duplicated(
    prefect_api: str, cluster: Any, tmp_path: Path,
) -> None:
    """SIGKILL one of the two worker processes while it holds a task: the scheduler reruns
    its tasks on the other worker (and the Nanny restarts it); the run completes with the
    same rows as a clean run, no sample duplicated, and nothing already answered is asked
    again. Since issue 19 model requests and answer grading run in the flow's process and
    the workers get the stages that compute: csv's sandbox runs here (gvr would send the
    workers nothing), so the victim is a worker Dask says is processing a task."""
    reference = tmp_path / "reference.duckdb"
    with InstantServer(behaviour=SelfChecking(model="instant")) as srv:
        run_solve(str(example_path()), "kill", overrides=solve_overrides(srv.base_url, reference, **CSV))
        needed = srv.behaviour.requests

    db = tmp_path / "killed.duckdb"
    behaviour = SelfChecking(model="instant", delay_s=0.3)
    killed: dict[str, int] = {}
    pids = worker_pids(cluster)

    def kill_when_busy() -> None:
        from distributed import Client

        with Client(cluster) as client:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                busy = sorted(addr for addr, tasks in client.processing().items() if tasks)
                if busy:  # a worker holds a task (a sandbox run of a csv sample)
                    victim = pids[busy[0]]
                    killed["in_flight"] = behaviour.received - behaviour.requests
                    killed["answered"] = behaviour.requests
                    os.kill(victim, signal.SIGKILL)
                    killed["pid"] = victim
                    killed["stored"] = stored_ok_calls(db)
                    return
                time.sleep(0.01)

    with InstantServer(behaviour=behaviour) as srv:
        killer = threading.Thread(target=kill_when_busy, daemon=True)
        killer.start()
        summary = run_solve(str(example_path()), "kill", overrides=solve_overrides(
            srv.base_url, db, **CSV, **{"solve.problems_in_flight": 4}, **on_dask(cluster)))
        killer.join(5)
    assert "pid" in killed, "the worker was never killed (no task on a worker?)"
    assert summary["done"] == summary["problems"] == CSV["solve.limit"]
    got, want = stored(db), stored(reference)
    assert got["samples"] == want["samples"] and got["verdicts"] == want["verdicts"]
    assert got["results"] == want["results"]
    assert got["duplicate_calls"] == 0 and got["ok_calls"] == needed
    # Asked again: at most what the flow had not stored when the worker died: the requests
    # in flight, plus answers the dead worker had received but whose task results had not
    # yet reached the flow (Dask recomputes a lost result). Nothing stored is asked again.
    extra = behaviour.requests - needed
    unstored = killed["in_flight"] + killed["answered"] - killed["stored"]
    assert 0 <= extra <= unstored, (extra, killed)
    print(f"worker killed holding a task, {killed['in_flight']} request(s) in flight; asked again: {extra}")
    new_pids = worker_pids(cluster)
    assert len(new_pids) == 2 and killed["pid"] not in new_pids.values()  # the Nanny replaced it


# ---------------------------------------------------------------- kill the flow process

RUN_SCRIPT = """
import json, sys
from proofflow.flows.solve import run_solve
print(json.dumps(run_solve(sys.argv[1], "flowkill", overrides=json.loads(sys.argv[2]))["done"]))
"""


def _descendants(pid: int) -> list[int]:
    import psutil

    try:
        return [p.pid for p in psutil.Process(pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def _alive(pid: int) -> bool:
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_flow_process_killed_with_dask_then_rerun_resumes(prefect_api: str, tmp_path: Path) -> None:
    """The flow process (with its own local cluster) is SIGKILLed mid-run: its Dask
    workers and their checker processes go with it; the same command again resumes and
    ends with the same rows as a clean run."""
    reference = tmp_path / "reference.duckdb"
    with InstantServer(behaviour=SelfChecking(model="instant")) as srv:
        run_solve(str(example_path()), "flowkill", overrides=solve_overrides(srv.base_url, reference, **CSV))
        needed = srv.behaviour.requests

    db = tmp_path / "flowkill.duckdb"
    env = {**os.environ, "PREFECT_API_URL": prefect_api}
    # The 7th request (a repair: the 4 generate requests come first) is held past the kill,
    # so the run cannot finish before it.
    held = 7
    behaviour = SelfChecking(model="instant", delay_s=0.2, slow_requests={held: 600.0})
    with InstantServer(behaviour=behaviour) as srv:
        over = json.dumps(solve_overrides(srv.base_url, db, **CSV, **{
            "runner.kind": "dask", "runner.workers": 2, "runner.threads_per_worker": 2}))
        argv = [sys.executable, "-c", RUN_SCRIPT, str(example_path()), over]
        proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 180
        # Killed once a sandbox run on a worker has been stored (the local cluster starts
        # with the first task it is sent: csv's sandbox runs) and the held request is asked.
        while (stored_count(db, "verdicts WHERE verifier = 'self_verify'") < 1 or behaviour.received < held) \
                and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
        assert proc.poll() is None, proc.communicate()[0].decode()[-3000:]
        family = _descendants(proc.pid)
        assert len(family) >= 2  # the two Dask worker processes (and their checkers)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        stop = time.monotonic() + 20
        while time.monotonic() < stop and any(_alive(p) for p in family):
            time.sleep(0.2)
        assert not [p for p in family if _alive(p)], "processes of the killed run survived it"
        first = behaviour.requests
        assert 0 < first < needed, (first, needed)
        stored_before = Store(db).query("SELECT count(*) FROM calls WHERE status = 'ok'")[1][0][0]

        again = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300)
        assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
        assert again.stdout.strip().splitlines()[-1] == str(CSV["solve.limit"])
    got, want = stored(db), stored(reference)
    assert got["samples"] == want["samples"] and got["verdicts"] == want["verdicts"]
    assert got["results"] == want["results"]
    assert got["duplicate_calls"] == 0
    # Resumed, not redone: every needed request is stored exactly once, and the model was
    # asked again only for answers the killed process had received but not yet stored
    # (`stored_before` is what a reader saw right after the kill; a batch the writer had
    # made durable but not yet merged is imported by the rerun, so it can only be more).
    assert got["ok_calls"] == needed
    lost = behaviour.requests - needed
    assert 0 <= lost <= first - stored_before, (lost, first, stored_before)
    print(f"killed after {first} answered requests ({stored_before} visible in the DB); "
          f"rerun asked {behaviour.requests - first}; {lost} answer(s) lost with the process, asked again")


# ------------------------------------------- why the resumed run matched (found by the kill test)

def test_a_repair_round_resumed_after_one_repair_passed_still_asks_the_rest() -> None:
    """The flow-kill test above once resumed a run killed mid-repair-round with 2 of 3
    repairs stored, one of them passing: the old planner saw the problem solved and
    skipped the third repair, so the resumed run had one sample fewer than a clean run.
    A clean run plans a round before any of its repairs is checked; so must a resumed one."""
    from proofflow.config import load_settings
    from proofflow.keys import sample_id
    from proofflow.problems import load_problems
    from proofflow.storage.records import SampleRow, VerdictRow
    from proofflow.tasks.context import RunContext, WorkItem
    from proofflow.tasks.repair import plan_repair

    problem = load_problems(str(example_path()))[0]
    ctx = RunContext("r_test", "t", "examples", load_settings(overrides={"solve.samples": 3}))

    def sample(stage: str, parent: str | None, idx: int, round_: int) -> SampleRow:
        sid = sample_id(ctx.run_id, problem.id, stage, parent, idx)
        return SampleRow(sid, ctx.run_id, problem.id, stage, parent, idx, round_, None, None, None, None, None,
                         None, "text", None, 1, 1, True, 0.0, None)

    def verdict(s: SampleRow, outcome: str) -> VerdictRow:
        return VerdictRow(s.sample_id, "answer", "1", ctx.run_id, problem.id, outcome, None, None,
                          "wrong" if outcome == "fail" else None, None, 0.0)

    item = WorkItem(problem)
    parents = [sample("generate", None, i, 0) for i in range(3)]
    item.add(*parents, *[verdict(p, "fail") for p in parents])
    assert len(plan_repair(ctx, [item], 1)) == 3  # the clean run's round 1
    done = [sample("repair", p.sample_id, 0, 1) for p in parents[:2]]
    item.add(*done, verdict(done[0], "pass"), verdict(done[1], "fail"))
    plans = plan_repair(ctx, [item], 1)
    assert [p.parent_id for p in plans] == [parents[2].sample_id]
    # A problem solved in an earlier round is not repaired (repair_after_pass = false).
    assert plan_repair(ctx, [item], 2) == []
