"""Cluster rehearsal on one machine (issue 19.5): what a cluster runs, as separate
processes, and Lean checks/s with 1 and then 2 Dask workers.

Started here, each its own process (session): a Prefect server on a free port (its own
PREFECT_HOME), `dask scheduler` on a free port, `dask worker tcp://...` processes
(`--nthreads` and `--memory-limit` below; the Nanny's memory limit watches the worker
process, not its Lean children), and the model: a STAND-IN, the recorded-completion
server (proofflow/testing/recorded_server.py) answering at once from a table written
here (per problem of lean-examples: every 4th candidate the problem's own automation
tactic, the others a proof that makes Lean work ~2.5 s and then does not typecheck; problems without an automation
tactic get only wrong ones), each candidate a distinct text so every one costs a real
check on the real wasm Lean. The run is the CLI, as a user types it:

    proofflow prove lean-examples --backend lean --strategy whole -n N \
        --repair-rounds 0 --repair-depth 0 --workers T --problems-in-flight 4 \
        --runner dask --runner-address tcp://127.0.0.1:PORT --model recorded --base-url URL
    with PROOFFLOW_PROVE__STOP_ON_FIRST_COMPLETE=false (every candidate is checked)
    and PROOFFLOW_PROVE__CHECKER_RECYCLE_AFTER above the bench's checks (no start-up mid-run)

Warm-up excluded: each worker's wasm Lean takes ~25 s or more to start. Before the
measured run, the same command (same settings, so the same per-process checker) runs on
a scratch database over a few problems, until every worker holds a Lean process; the
measured run must then start no new Lean process (the Lean pids before and after are
compared; the bench fails otherwise). checks/s is counted two ways: over the checking
window (first to last Lean verdict of the measured run, from the verdicts' timestamps,
made on the worker after each check) and over the whole CLI process.

Also measured, for deployments/scaling.md: core-seconds per check (CPU of the worker
process trees, Lean included, over the measured run / checks), the flow process's CPU
per sample (the CLI process, from wait4), the Prefect server's CPU per task run, and a
task run's orchestration cost on a worker (no-op Prefect tasks on the same cluster),
from which the check batch size rule (tasks/check_proofs.py) is printed.

    python bench/bench_cluster.py [--samples 4] [--nthreads 1] [--memory-limit 4GiB]

Every process started here is stopped at the end, also on failure or Ctrl-C.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# A wrong proof that costs Lean real work first, as a model's failed attempt does (omega
# proves three `have`s, ~0.7-0.9 s each here; then the `exact` typechecks against no goal
# of lean-examples), so checks, not orchestration, are the load ("checks dominate").
WRONG = "".join(f"have h{k} : ∀ a b c : Int, 3 * a + 5 * b - 7 * c = {11 + k} → 2 * a - b + c = 4 → "
                f"a + b + c ≠ {100 + k} := by omega\n  " for k in range(3)) + "exact Nat.lt_irrefl 0"
# Checks per Lean process before a fresh one: above the whole bench's, so that no measured
# run pays a start-up (the checker's default, 500, recycled one mid-run: ~47 s).
RECYCLE_AFTER = 100_000
RIGHT_EVERY = 4  # every 4th candidate of a problem with an automation tactic is right


# --------------------------------------------------------------------- the stand-in

def candidate(statement: str, tactic: str | None, index: int) -> str:
    body = tactic if tactic and index % RIGHT_EVERY == 0 else WRONG
    # The comment makes every candidate a distinct text: no verdict-cache hit.
    return f"```lean\n{statement}\n  -- candidate {index}\n  {body}\n```\n"


def recording(samples: int) -> Any:
    """The recorded answer table: choice `index` of a problem's request gets candidate `index`."""
    from proofflow.problems import example_path
    from proofflow.testing.recorded_server import Recording

    table: dict[str, list[str]] = {}
    for line in example_path("lean_examples").read_text().splitlines():
        row = json.loads(line)
        tactic = row.get("automation") if row.get("automation") in ("omega", "decide", "simp") else None
        table[f"theorem {row['id']} "] = [candidate(row["statement"], tactic, i) for i in range(samples)]

    @dataclass
    class VariedRecording(Recording):
        """Recording whose table holds one text per choice index (STAND-IN, not a model)."""

        table: dict[str, list[str]] = field(default_factory=dict)

        def completion(self, prompt: str, seed: int, index: int) -> str:
            for key, texts in self.table.items():
                if key in prompt:
                    return texts[index % len(texts)]
            return self.default

    return VariedRecording(table=table, model="recorded")


# ------------------------------------------------------------------------ processes

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Processes:
    """Every process this bench starts (each in its own session); stop() ends them all."""

    def __init__(self, logs: Path):
        self.logs = logs
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str, argv: list[str], env: dict[str, str], log_path: Path | None = None,
              ) -> subprocess.Popen[bytes]:
        with open(log_path or self.logs / f"{name}.log", "wb") as log:
            p = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.procs[name] = p
        return p

    def stop(self, name: str) -> None:
        p = self.procs.pop(name, None)
        if p is None or p.poll() is not None:
            return
        for sig, wait in ((signal.SIGTERM, 20), (signal.SIGKILL, 10)):
            try:
                os.killpg(p.pid, sig)  # the process and its children (Lean, the Nanny's worker)
            except ProcessLookupError:
                return
            try:
                p.wait(wait)
                break
            except subprocess.TimeoutExpired:
                continue
        try:
            os.killpg(p.pid, signal.SIGKILL)  # children left behind in the group
        except ProcessLookupError:
            pass

    def stop_all(self) -> None:
        for name in reversed(list(self.procs)):
            self.stop(name)


def wait_until(what: str, ok: Any, timeout: float, proc: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{what}: the process exited with {proc.returncode}")
        try:
            if ok():
                return
        except Exception:  # noqa: BLE001 - not up yet
            pass
        time.sleep(0.5)
    raise RuntimeError(f"{what} did not come up in {timeout:.0f} s")


def tree(pid: int) -> list[Any]:
    import psutil

    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def cpu_of(pids: list[int]) -> float:
    """User + system CPU seconds of these processes' trees (live processes)."""
    import psutil

    total = 0.0
    for pid in pids:
        for p in tree(pid):
            try:
                t = p.cpu_times()
                total += t.user + t.system
            except psutil.NoSuchProcess:
                pass
    return total


def machine_cpu() -> float:
    """CPU seconds every process on this machine has spent since boot (/proc/stat: user,
    nice, system, irq, softirq, steal), to show how busy the cores were over a run."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def lean_pids(pids: list[int]) -> set[int]:
    import psutil

    found = set()
    for pid in pids:
        for p in tree(pid):
            try:
                if any("lean" in part for part in p.cmdline()[1:2]):
                    found.add(p.pid)
            except psutil.NoSuchProcess:
                pass
    return found


# ------------------------------------------------------------------------ one config

@dataclass
class Measured:
    workers: int
    checks: int
    samples: int
    window_s: float
    wall_s: float
    flow_cpu_s: float
    worker_cpu_s: float
    lean_cpu_s: float
    server_cpu_s: float
    task_runs: int
    complete: int
    machine_busy_s: float = 0.0  # CPU seconds the whole machine spent over the CLI run

    @property
    def window_rate(self) -> float:
        return (self.checks - 1) / self.window_s

    @property
    def wall_rate(self) -> float:
        return self.checks / self.wall_s


def run_cli(procs: Processes, argv: list[str], env: dict[str, str], log: Path,
            timeout: float) -> tuple[float, float]:
    """Run the CLI to the end; (wall s, CPU s of the process and what it waited for)."""
    t0 = time.perf_counter()
    p = procs.start("cli", argv, env, log)
    deadline = time.monotonic() + timeout
    while True:
        pid, status, usage = os.wait4(p.pid, os.WNOHANG)
        if pid:
            procs.procs.pop("cli", None)
            break
        if time.monotonic() > deadline:
            procs.stop("cli")
            raise RuntimeError(f"{argv[:3]} ran past {timeout:.0f} s (log: {log})")
        time.sleep(0.05)
    wall = time.perf_counter() - t0
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode != 0:
        raise RuntimeError(f"the CLI exited {p.returncode}:\n{log.read_text()[-3000:]}")
    return wall, usage.ru_utime + usage.ru_stime


def stored(db: Path, run: str) -> dict[str, Any]:
    from proofflow.storage.db import Store

    store = Store(db)
    rows = store.query(f"""
        SELECT count(*), min(v.created_at), max(v.created_at),
               count(*) FILTER (WHERE a.outcome = 'pass')
        FROM verdicts v JOIN runs r USING (run_id)
        JOIN verdicts a ON a.sample_id = v.sample_id AND a.verifier = 'formal_audit'
        WHERE r.name = '{run}' AND v.verifier = 'lean'
          AND NOT coalesce(json_extract(v.details, '$.cached')::BOOLEAN, false)""")[1]
    checks, first, last, complete = rows[0]
    samples = store.query(f"SELECT count(*) FROM samples s JOIN runs r USING (run_id) WHERE r.name = '{run}'")[1][0][0]
    return {"checks": checks, "window_s": (last - first).total_seconds(), "samples": samples, "complete": complete}


def task_runs(api: str) -> int:
    import httpx

    r = httpx.post(f"{api}/task_runs/count", json={}, timeout=30)
    r.raise_for_status()
    return int(r.json())


def measure(n_workers: int, args: argparse.Namespace, procs: Processes, base_env: dict[str, str],
            scheduler: str, api: str, server_pid: int, work: Path, prove_argv: list[str]) -> Measured:
    from distributed import Client

    names = [f"worker-{n_workers}-{i}" for i in range(n_workers)]
    for name in names:
        procs.start(name, ["dask", "worker", scheduler, "--nthreads", str(args.nthreads), "--nworkers", "1",
                           "--memory-limit", args.memory_limit, "--no-dashboard", "--name", name,
                           "--local-directory", str(work / name)], base_env)
    with Client(scheduler, timeout=60) as client:
        wait_until(f"{n_workers} dask worker(s)", lambda: len(client.scheduler_info()["workers"]) == n_workers,
                   180)
    worker_pids = [procs.procs[n].pid for n in names]
    try:
        # Warm-up: the same command on a scratch database, until every worker holds a Lean process.
        warm_file = work / f"warm-{n_workers}.jsonl"
        from proofflow.problems import example_path

        lines = example_path("lean_examples").read_text().splitlines()
        warm_file.write_text("\n".join(lines[:2 * n_workers]) + "\n")
        for attempt in range(3):
            t0 = time.perf_counter()
            run_cli(procs, [*prove_argv_for(prove_argv, str(warm_file)), "--db", str(work / f"warm-{n_workers}.duckdb"),
                     "--run", f"warm-{n_workers}-{attempt}"], base_env, work / f"warm-{n_workers}-{attempt}.log",
                    args.timeout)
            with_lean = [pid for pid in worker_pids if lean_pids([pid])]
            print(f"  warm-up run {attempt + 1}: {time.perf_counter() - t0:.0f} s, "
                  f"{len(with_lean)}/{n_workers} worker(s) hold a Lean process", flush=True)
            if len(with_lean) == n_workers:
                break
        else:
            raise RuntimeError("the warm-up did not reach every worker")
        before_lean = lean_pids(worker_pids)
        lean = sorted(before_lean)
        cpu0, lean0, srv0, runs0 = cpu_of(worker_pids), cpu_of(lean), cpu_of([server_pid]), task_runs(api)
        busy0 = machine_cpu()
        run = f"cluster-{n_workers}w"
        db = work / f"run-{n_workers}.duckdb"
        wall, flow_cpu = run_cli(procs, [*prove_argv_for(prove_argv, "lean-examples"), "--db", str(db),
                                         "--run", run], base_env, work / f"run-{n_workers}.log", args.timeout)
        busy1 = machine_cpu()
        cpu1, lean1, srv1, runs1 = cpu_of(worker_pids), cpu_of(lean), cpu_of([server_pid]), task_runs(api)
        after_lean = lean_pids(worker_pids)
        if after_lean != before_lean:
            raise RuntimeError(f"the measured run started Lean processes: {sorted(before_lean)} -> {sorted(after_lean)}"
                               " (the warm-up is in the figure; is the checker configured differently?)")
        s = stored(db, run)
        return Measured(n_workers, s["checks"], s["samples"], s["window_s"], wall, flow_cpu, cpu1 - cpu0,
                        lean1 - lean0, srv1 - srv0, runs1 - runs0, s["complete"], busy1 - busy0)
    finally:
        for name in names:
            procs.stop(name)
    with Client(scheduler, timeout=60) as client:  # the next configuration starts from none
        wait_until("workers gone", lambda: not client.scheduler_info()["workers"], 60)


def prove_argv_for(template: list[str], problems: str) -> list[str]:
    return [problems if a == "{problems}" else a for a in template]


def task_overhead(scheduler: str, tasks: int) -> tuple[float, float]:
    """(latency of one task run submitted after the previous returned, worker-side CPU per
    task run) for a no-op Prefect task on the cluster, with proofflow's Dask runner."""
    from prefect import flow, task

    from proofflow.config import load_settings
    from proofflow.flows.runners import task_runner_for

    settings = load_settings(overrides={"runner.kind": "dask", "runner.address": scheduler})

    @task(name="no-op")
    def noop(i: int) -> int:
        return os.getpid()

    @flow(name="bench cluster no-op", task_runner=task_runner_for(settings, 1))
    def run() -> list[int]:
        noop.submit(-1).result()  # connect, register the plugin
        return [noop.submit(i).result() for i in range(tasks)]

    from distributed import Client

    with Client(scheduler, timeout=60) as client:
        pids = [w["pid"] for w in client.scheduler_info()["workers"].values() if "pid" in w]
    cpu0 = cpu_of(pids)
    t0 = time.perf_counter()
    run()
    wall = time.perf_counter() - t0
    return wall / tasks, (cpu_of(pids) - cpu0) / tasks


# ------------------------------------------------------------------------------ main

@contextmanager
def stopped_on_signals(procs: Processes) -> Iterator[None]:
    def handler(signum: int, frame: Any) -> None:
        procs.stop_all()
        os._exit(128 + signum)  # nothing left to wait for: every process is stopped

    old = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        procs.stop_all()
        for s, h in old.items():
            signal.signal(s, h)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--samples", type=int, default=4, help="candidates per problem (N)")
    parser.add_argument("--nthreads", type=int, default=1, help="task threads per worker = Lean processes per worker")
    parser.add_argument("--memory-limit", default="4GiB", help="per dask worker (its Nanny restarts it above)")
    parser.add_argument("--workers", default="1,2", help="worker counts to measure, in order")
    parser.add_argument("--noop-tasks", type=int, default=20)
    parser.add_argument("--timeout", type=float, default=900, help="per CLI run, seconds")
    args = parser.parse_args()

    from proofflow.testing.recorded_server import RecordedServer

    work = Path(tempfile.mkdtemp(prefix="bench-cluster-"))
    procs = Processes(work)
    prefect_port, scheduler_port = free_port(), free_port()
    api = f"http://127.0.0.1:{prefect_port}/api"
    scheduler = f"tcp://127.0.0.1:{scheduler_port}"
    base_env = {**os.environ, "PREFECT_API_URL": api, "PREFECT_HOME": str(work / "prefect-home"),
                "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PREFECT_LOGGING_LEVEL": "WARNING",
                "PROOFFLOW_PROVE__STOP_ON_FIRST_COMPLETE": "false",
                "PROOFFLOW_PROVE__CHECKER_RECYCLE_AFTER": str(RECYCLE_AFTER)}
    os.environ.update({k: base_env[k] for k in ("PREFECT_API_URL", "PREFECT_LOGGING_LEVEL",
                                                "PREFECT_SERVER_ANALYTICS_ENABLED")})
    print(f"work folder {work}; load: {os.getloadavg()}", flush=True)
    results: list[Measured] = []
    with stopped_on_signals(procs), RecordedServer(recording(args.samples)) as model:
        server = procs.start("prefect-server", ["prefect", "server", "start", "--host", "127.0.0.1", "--port",
                                                str(prefect_port)], base_env)
        sched = procs.start("dask-scheduler", ["dask", "scheduler", "--host", "127.0.0.1", "--port",
                                               str(scheduler_port), "--no-dashboard"], base_env)
        import httpx

        wait_until("prefect server", lambda: httpx.get(f"{api}/health", timeout=2).status_code == 200, 180, server)
        wait_until("dask scheduler", lambda: socket.create_connection(("127.0.0.1", scheduler_port), 1).close() or True,
                   60, sched)
        prove_argv = ["proofflow", "prove", "{problems}", "--backend", "lean", "--strategy", "whole",
                      "-n", str(args.samples), "--repair-rounds", "0", "--repair-depth", "0",
                      "--workers", str(args.nthreads), "--problems-in-flight", "4", "--check-timeout", "240",
                      "--runner", "dask", "--runner-address", scheduler,
                      "--model", "recorded", "--base-url", model.base_url]
        print("run: " + " ".join(prove_argv).replace("{problems}", "lean-examples"), flush=True)
        for n in (int(x) for x in args.workers.split(",")):
            print(f"{n} worker(s): --nthreads {args.nthreads} --memory-limit {args.memory_limit}", flush=True)
            m = measure(n, args, procs, base_env, scheduler, api, server.pid, work, prove_argv)
            results.append(m)
            print(f"  {m.checks} checks ({m.complete} complete) of {m.samples} samples: "
                  f"{m.window_rate:.2f} checks/s over the checking window ({m.window_s:.1f} s), "
                  f"{m.wall_rate:.2f} over the whole CLI process ({m.wall_s:.1f} s); load {os.getloadavg()}",
                  flush=True)
        # The per-task cost on a worker, with the last configuration's worker count.
        n = results[-1].workers
        names = [f"noop-{i}" for i in range(n)]
        for name in names:
            procs.start(name, ["dask", "worker", scheduler, "--nthreads", "1", "--nworkers", "1",
                               "--memory-limit", args.memory_limit, "--no-dashboard", "--name", name,
                               "--local-directory", str(work / name)], base_env)
        from distributed import Client

        with Client(scheduler, timeout=60) as client:
            wait_until("no-op workers", lambda: len(client.scheduler_info()["workers"]) == n, 180)
        latency, task_cpu = task_overhead(scheduler, args.noop_tasks)
        for name in names:
            procs.stop(name)

    print()
    print(f"Lean checks/s by Dask workers ({os.cpu_count()} cores here; {args.nthreads} thread(s) and Lean "
          f"process(es) per worker; N = {args.samples}; every candidate checked)")
    print(f"{'workers':>8} {'checks':>7} {'window s':>9} {'checks/s':>9} {'ratio':>6} {'CLI wall s':>11} "
          f"{'checks/s':>9} {'ratio':>6}")
    base = results[0]
    for m in results:
        print(f"{m.workers:>8} {m.checks:>7} {m.window_s:>9.1f} {m.window_rate:>9.2f} "
              f"{m.window_rate / base.window_rate:>6.2f} {m.wall_s:>11.1f} {m.wall_rate:>9.2f} "
              f"{m.wall_rate / base.wall_rate:>6.2f}")
    print()
    one = results[0]
    per_check = one.worker_cpu_s / one.checks
    print("costs (1-worker run):")
    print(f"  per check: {per_check:.3f} core-s on the worker node ({one.lean_cpu_s / one.checks:.3f} of it in Lean)")
    for m in results:
        print(f"  {m.workers} worker(s): flow process {m.flow_cpu_s:.1f} CPU s for {m.samples} samples = "
              f"{1000 * m.flow_cpu_s / m.samples:.1f} ms/sample (start-up included); Prefect server "
              f"{m.server_cpu_s:.1f} CPU s for {m.task_runs} task runs = "
              f"{1000 * m.server_cpu_s / max(1, m.task_runs):.0f} ms/task run")
    for m in results:
        print(f"  {m.workers} worker(s): the machine's cores were busy {m.machine_busy_s / m.wall_s:.2f} of "
              f"{os.cpu_count()} over the CLI run (all processes: {m.machine_busy_s:.1f} CPU s in {m.wall_s:.1f} s); "
              f"Lean {m.lean_cpu_s:.1f} CPU s, the workers' other processes {m.worker_cpu_s - m.lean_cpu_s:.1f}")
    print(f"  a no-op task run on a worker: {1000 * latency:.0f} ms latency, {1000 * task_cpu:.0f} ms worker CPU")
    rule = 10 * max(latency, task_cpu) / per_check
    print(f"  batch size rule b >= 10 o / c = 10 x {max(latency, task_cpu):.3f} / {per_check:.3f} = {rule:.1f} "
          f"-> {math.ceil(rule)} checks per task (tasks/check_proofs.py CHECK_BATCH)")
    print(f"load at the end: {os.getloadavg()}; logs in {work}")


if __name__ == "__main__":
    main()
