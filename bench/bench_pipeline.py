"""Pipeline overhead benchmark (issue 19): whole `proofflow solve` processes against a bare
peer script (bench/peer_solve.py: the openai client, 4 threads, JSONL, math-verify),
side by side in one run, on the same STAND-IN instant model server (answers at once, so
model latency does not hide our own cost), the same GSM8K problems, the same prompt,
sampling and grading library, no repair rounds.

What it runs, per size (problems × samples; default 200×16 and 1,000×16):
  - `--pairs` rounds (median reported) of: the peer script, `proofflow solve --runner
    threads`, and (sizes up to --dask-max-problems) `proofflow solve --runner dask
    --runner-workers 2`, each a fresh subprocess on a fresh database / JSONL, the order
    rotating every round so load drifts hit every side alike;
  - each one's rerun: a no-op resume (the peer skips what its JSONL has; proofflow finds
    a finished run in the store).
For each: wall time, CPU of the process tree (the child's rusage: the flow process plus
the children it reaped: answer checkers, a local Dask cluster), the flow process's own CPU
(bench/self_cpu.py), the Prefect server's CPU over the run, and the time from the
process's start to its first model request (seen by the stand-in server, which runs in
this process). The flows report to a real `prefect server` this bench starts on a free
port with its own PREFECT_HOME (PREFECT_API_URL set for the children).

    python bench/bench_pipeline.py [--sizes 200x16,1000x16] [--pairs 3] [--runners threads,dask]
                                   [--dask-max-problems 200]

It prints a table of medians and ratios against the peer with the issue's targets, and
exits 0 whatever the figures (a bench, not a test). Quote `uptime` with any figure: the
machine is shared.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console
from rich.table import Table

from proofflow.testing.instant_server import InstantServer

ROOT = Path(__file__).resolve().parents[1]
GSM8K = ROOT.parent / "shared" / "data" / "gsm8k" / "test.jsonl"
PEER = ROOT / "bench" / "peer_solve.py"
SELF_CPU = ROOT / "bench" / "self_cpu.py"

# The targets: (what, limit) per figure name used below.
TARGETS = {
    "threads/peer 200": 1.5, "threads/peer 1000": 1.2, "dask/threads": 1.5,
    "resume/peer 200": 1.5, "resume 1000 s": 2.0, "cpu ms/sample": 1.0,
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Measure:
    wall_s: float
    cpu_s: float
    first_request_s: float | None  # process start → first model request the server saw
    rc: int
    self_cpu_s: float | None = None  # the flow process alone (bench/self_cpu.py), proofflow only
    server_cpu_s: float | None = None  # the Prefect server's CPU over the run, proofflow only


@dataclass
class Series:
    runs: list[Measure] = field(default_factory=list)

    def median(self, attr: str) -> float | None:
        values = [getattr(m, attr) for m in self.runs if getattr(m, attr) is not None]
        return statistics.median(values) if values else None


class Bench:
    def __init__(self, workdir: Path, server: InstantServer, env: dict[str, str], prefect_pid: int):
        self.workdir = workdir
        self.server = server
        self.env = env
        self.log = workdir / "children.log"
        self.prefect_pid = prefect_pid

    def prefect_cpu(self) -> float:
        """CPU seconds of the Prefect server's process tree so far (it serves every round:
        a run's share is the difference across it, events it works through later excluded)."""
        from bench_cluster import cpu_of  # a sibling script: bench/ is on sys.path when run

        return cpu_of([self.prefect_pid])

    def timed(self, argv: list[str], timeout_s: float = 1800) -> Measure:
        """One whole process: wall, its (and its reaped children's) CPU from wait4, and
        the delay to the first model request it sent."""
        t0 = time.monotonic()
        with self.log.open("a") as log:
            log.write(f"\n$ {' '.join(argv)}\n")
            log.flush()
            proc = subprocess.Popen(argv, cwd=self.workdir, env=self.env, stdout=log, stderr=log)
            deadline = t0 + timeout_s
            while True:
                pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
                if pid:
                    break
                if time.monotonic() > deadline:
                    proc.kill()
                    pid, status, usage = os.wait4(proc.pid, 0)
                    break
                time.sleep(0.02)
        wall = time.monotonic() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        with self.server.behaviour.lock:
            sent = [t for t in self.server.behaviour.received_at if t >= t0]
        first = min(sent) - t0 if sent else None
        return Measure(wall, usage.ru_utime + usage.ru_stime, first, proc.returncode)

    def peer(self, out: Path, problems: int, samples: int) -> Measure:
        return self.timed([sys.executable, str(PEER), str(GSM8K), "--base-url", self.server.base_url,
                           "--model", "instant", "-n", str(samples), "--limit", str(problems), "--out", str(out)])

    def proofflow(self, db: Path, problems: int, samples: int, runner: str) -> Measure:
        extra = ["--runner-workers", "2"] if runner == "dask" else []
        own = db.with_suffix(".cpu")
        own.unlink(missing_ok=True)
        server0 = self.prefect_cpu()
        m = self.timed([sys.executable, str(SELF_CPU), str(own), "solve", str(GSM8K), "--base-url",
                        self.server.base_url, "--model", "instant", "-n", str(samples), "-r", "0",
                        "--limit", str(problems), "--db", str(db), "--run", "bench", "--runner", runner, *extra])
        m.server_cpu_s = self.prefect_cpu() - server0
        m.self_cpu_s = float(own.read_text()) if own.exists() else None
        return m


def start_prefect_server(home: Path) -> tuple[subprocess.Popen[bytes], str]:
    import httpx

    port = free_port()
    env = {**os.environ, "PREFECT_HOME": str(home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
           "PREFECT_UI_ENABLED": "false"}
    env.pop("PREFECT_API_URL", None)
    proc = subprocess.Popen(["prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    url = f"http://127.0.0.1:{port}/api"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"prefect server exited with {proc.returncode}")
        try:
            if httpx.get(url + "/health", timeout=2).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise RuntimeError("prefect server did not answer /health within 180 s")


def stop_group(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)  # the server's own process group (start_new_session)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def parse_sizes(text: str) -> list[tuple[int, int]]:
    sizes = []
    for part in text.split(","):
        problems, _, samples = part.partition("x")
        sizes.append((int(problems), int(samples)))
    return sizes


def fmt(value: float | None, unit: str = "s", digits: int = 2) -> str:
    return "n/a" if value is None else f"{value:.{digits}f} {unit}".strip()


def per_sample(cpu_s: float | None, samples: int) -> str:
    return "" if cpu_s is None else fmt(cpu_s / samples * 1000, "ms")


def ratio(a: float | None, b: float | None) -> str:
    return "n/a" if a is None or b is None or b == 0 else f"{a / b:.2f}×"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="200x16,1000x16", help="problems x samples, comma-separated")
    parser.add_argument("--pairs", type=int, default=3, help="rounds per size (median reported)")
    parser.add_argument("--runners", default="threads,dask")
    parser.add_argument("--dask-max-problems", type=int, default=200, help="larger sizes skip the dask runner")
    parser.add_argument("--keep", action="store_true", help="keep the work folder (databases, logs)")
    args = parser.parse_args()
    runners = [r for r in args.runners.split(",") if r]

    workdir = Path(tempfile.mkdtemp(prefix="proofflow-bench-"))
    console = Console(width=max(160, shutil.get_terminal_size().columns))
    results: dict[tuple[int, int, str], Series] = {}
    resumes: dict[tuple[int, int, str], Series] = {}
    prefect, api = start_prefect_server(workdir / "prefect-home")
    try:
        env = {**os.environ, "PREFECT_API_URL": api, "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
               "PREFECT_HOME": str(workdir / "prefect-home"), "COLUMNS": "200"}
        with InstantServer() as server:
            bench = Bench(workdir, server, env, prefect.pid)
            for problems, samples in parse_sizes(args.sizes):
                sides = ["peer"] + [r for r in runners if r != "dask" or problems <= args.dask_max_problems]
                for round_no in range(args.pairs):
                    order = sides[round_no % len(sides):] + sides[:round_no % len(sides)]
                    for side in order:
                        key = (problems, samples, side)
                        tag = f"{problems}x{samples}-{side}-{round_no}"
                        if side == "peer":
                            out = workdir / f"{tag}.jsonl"
                            first, again = bench.peer(out, problems, samples), bench.peer(out, problems, samples)
                        else:
                            db = workdir / f"{tag}.duckdb"
                            first = bench.proofflow(db, problems, samples, side)
                            again = bench.proofflow(db, problems, samples, side)
                        results.setdefault(key, Series()).runs.append(first)
                        resumes.setdefault(key, Series()).runs.append(again)
                        console.print(f"{tag}: {first.wall_s:.2f} s (cpu {first.cpu_s:.2f} s, rc {first.rc}); "
                                      f"rerun {again.wall_s:.2f} s (rc {again.rc})", highlight=False)
    finally:
        stop_group(prefect)
        load = os.getloadavg()
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)

    table = Table(title=f"whole processes, median of {args.pairs}; stand-in instant server; "
                        f"{os.cpu_count()} cores; load {load[0]:.1f}/{load[1]:.1f}/{load[2]:.1f}")
    for col in ("size", "side", "wall", "× peer", "CPU", "CPU ms/sample", "flow CPU ms/sample",
                "Prefect server CPU", "to 1st request", "no-op rerun", "rerun × peer", "failed runs"):
        table.add_column(col, justify="right")
    for (problems, samples, side), series in results.items():
        peer = results.get((problems, samples, "peer"))
        peer_again = resumes.get((problems, samples, "peer"))
        again = resumes[(problems, samples, side)]
        wall, cpu = series.median("wall_s"), series.median("cpu_s")
        failed = sum(1 for m in series.runs + again.runs if m.rc != 0)
        table.add_row(
            f"{problems}×{samples}", side, fmt(wall),
            "" if side == "peer" else ratio(wall, peer and peer.median("wall_s")),
            fmt(cpu), fmt(cpu / (problems * samples) * 1000 if cpu is not None else None, "ms"),
            per_sample(series.median("self_cpu_s"), problems * samples), fmt(series.median("server_cpu_s")),
            fmt(series.median("first_request_s")), fmt(again.median("wall_s")),
            "" if side == "peer" else ratio(again.median("wall_s"), peer_again and peer_again.median("wall_s")),
            str(failed))
    console.print(table)

    targets = Table(title="issue 19's targets")
    for col in ("figure", "measured", "target"):
        targets.add_column(col, justify="right")

    def med(problems: int, side: str, of: dict[tuple[int, int, str], Series] = results) -> float | None:
        found = [s for (p, _, sd), s in of.items() if p == problems and sd == side]
        return found[0].median("wall_s") if found else None

    for problems, limit in ((200, TARGETS["threads/peer 200"]), (1000, TARGETS["threads/peer 1000"])):
        targets.add_row(f"threads / peer, {problems} problems", ratio(med(problems, "threads"), med(problems, "peer")),
                        f"≤ {limit}×")
    for problems in sorted({p for p, _, _ in results}):
        if med(problems, "dask") is not None:
            targets.add_row(f"dask / threads, {problems} problems",
                            ratio(med(problems, "dask"), med(problems, "threads")), f"≤ {TARGETS['dask/threads']}×")
    targets.add_row("no-op resume / peer rerun, 200 problems",
                    ratio(med(200, "threads", resumes), med(200, "peer", resumes)), f"≤ {TARGETS['resume/peer 200']}×")
    targets.add_row("no-op resume, 1,000 problems", fmt(med(1000, "threads", resumes)),
                    f"≤ {TARGETS['resume 1000 s']} s")
    for problems in sorted({p for p, _, _ in results}):
        for side in runners:
            found = [(s, n) for (p, n, sd), s in results.items() if p == problems and sd == side]
            if found:
                series, samples = found[0]
                targets.add_row(f"flow-process CPU per sample, {side}, {problems} problems",
                                per_sample(series.median("self_cpu_s"), problems * samples),
                                f"≤ {TARGETS['cpu ms/sample']} ms")
    console.print(targets)
    console.print("CPU is the process tree's (wait4 rusage: the flow process plus the children it reaped, "
                  "answer checkers and a local Dask cluster included); flow CPU is the flow process's own "
                  "(RUSAGE_SELF, bench/self_cpu.py); the Prefect server's is its process tree's over the run.")


if __name__ == "__main__":
    main()
