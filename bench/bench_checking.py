"""Checking throughput by task runner: Coq (or Lean) checks/s with threads in the flow's process
vs 1 and 2 Dask worker processes (a real LocalCluster), under a real temporary Prefect
server. The ratio to threads is what counts (issue 9): it says what moving the checks
onto worker processes costs or gains on this machine; on a cluster, workers add cores.

Each configuration runs the same Prefect flow: `--tasks` task runs, each checking a batch
of `--batch` proofs (the 8 reference Coq proofs of tests/data, cycled) with the
per-process checker from tasks/resources.py. A warm-up flow first starts every worker's
Coq sessions, so the figure is steady-state checking, not coqtop start-up.

With `--backend lean` the proofs are the `omega` problems of lean-examples closed by
`omega`, checked by the warm checker program on the wasm Lean (each process 2-3 GB and
20-75 s to start: the warm-up pays that once per process).

    python bench/bench_checking.py [--tasks 16] [--batch 8] [--sessions 2] [--backend coq|lean]

Why the total number of Coq sessions is kept equal (`--sessions`) across configurations:
with threads, the checks already run in separate coqtop processes; what differs between
runners is the Python side (task dispatch, serialisation, one checker per worker), and
that is what this measures.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

ROOT = Path(__file__).resolve().parents[1]
PROOFS = ROOT / "tests" / "data" / "coq_reference_proofs.jsonl"


def load_cases(backend: str = "coq") -> list[tuple[Any, str]]:
    if backend == "lean":
        from proofflow.problems import example_path, load_formal_problems

        problems = load_formal_problems(example_path("lean_examples"))
        return [(p, p.statement + "\n  omega\n") for p in problems if p.metadata["automation"] == "omega"]
    from proofflow.problems import coq_examples

    problems = {p.metadata["id"]: p for p in coq_examples()}
    cases = []
    for line in PROOFS.read_text().splitlines():
        row = json.loads(line)
        cases.append((problems[row["id"]], row["proof"]))
    return cases


def run_config(label: str, overrides: dict[str, Any], tasks: int, batch: int, cases: list) -> dict[str, Any]:
    from prefect import flow, task

    from proofflow.config import load_settings
    from proofflow.flows.runners import task_runner_for
    from proofflow.tasks import resources

    settings = load_settings(overrides=overrides)
    prove = settings.prove

    @task(name="check batch")
    def check_batch(start: int) -> tuple[int, int, float]:
        checker = resources.formal_checker(prove)
        t0 = time.perf_counter()
        complete = 0
        for i in range(start, start + batch):
            problem, source = cases[i % len(cases)]
            complete += checker.check(problem, source).status == "complete"
        return os.getpid(), complete, time.perf_counter() - t0

    runner = task_runner_for(settings, threads=settings.runner.threads_per_worker)

    @flow(name=f"bench checking {label}", task_runner=runner)
    def bench(n_tasks: int, warm: int) -> dict[str, Any]:
        # Warm-up: enough tasks to reach every worker and start its sessions.
        [f.result() for f in [check_batch.submit(0) for _ in range(warm)]]
        t0 = time.perf_counter()
        out = [f.result() for f in [check_batch.submit(i * batch) for i in range(n_tasks)]]
        wall = time.perf_counter() - t0
        return {"wall": wall, "pids": len({o[0] for o in out}), "complete": sum(o[1] for o in out),
                "in_task_s": sum(o[2] for o in out)}

    try:
        r = bench(tasks, warm=4)
    finally:
        resources.close_all()  # the threads config checks in this process
    checks = tasks * batch
    r.update(label=label, checks=checks, per_s=checks / r["wall"])
    return r


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, default=16)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--sessions", type=int, default=2, help="checker processes in all, per configuration")
    parser.add_argument("--backend", choices=("coq", "lean"), default="coq")
    args = parser.parse_args()
    if args.backend == "coq" and shutil.which("coqtop") is None:
        sys.exit("coqtop not found (scripts/test.sh installs Coq)")

    from prefect.testing.utilities import prefect_test_harness
    from rich.console import Console
    from rich.table import Table

    cases = load_cases(args.backend)
    s = args.sessions
    backend = {"prove.backend": args.backend}
    configs = [
        ("threads, 1 process", {**backend, "runner.kind": "threads", "runner.threads_per_worker": s,
                                "prove.workers": s}),
        ("dask, 1 worker", {**backend, "runner.kind": "dask", "runner.workers": 1, "runner.threads_per_worker": s,
                            "prove.workers": s}),
        ("dask, 2 workers", {**backend, "runner.kind": "dask", "runner.workers": 2,
                             "runner.threads_per_worker": max(1, s // 2), "prove.workers": max(1, s // 2)}),
    ]
    results = []
    with prefect_test_harness(server_startup_timeout=120):
        for label, overrides in configs:
            print(f"running {label} ...", flush=True)
            results.append(run_config(label, overrides, args.tasks, args.batch, cases))

    console = Console()
    name = "Coq" if args.backend == "coq" else "Lean (wasm)"
    table = Table(title=f"{name} checks/s by task runner ({os.cpu_count()} cores, {s} checker processes in all, "
                        f"{args.tasks} tasks × {args.batch} checks)")
    for col in ("runner", "processes used", "checks", "complete", "wall s", "checks/s", "ratio to threads"):
        table.add_column(col, justify="right")
    base = results[0]["per_s"]
    for r in results:
        table.add_row(r["label"], str(r["pids"]), str(r["checks"]), str(r["complete"]), f"{r['wall']:.2f}",
                      f"{r['per_s']:.1f}", f"{r['per_s'] / base:.2f}")
    console.print(table)


if __name__ == "__main__":
    main()
