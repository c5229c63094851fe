"""Sandbox throughput vs one ``subprocess.run([python, -c, code])`` per execution.

    python bench/bench_sandbox.py [--trivial 600] [--slow 60]

Both sides run with the same number of client threads (the pool size, one per core), so
the baseline gets the same parallelism. "50 ms program" busy-loops for 50 ms of CPU.
The baseline has no isolation at all (no namespaces, no uid drop, no limits).
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from proofflow.verifiers import Outcome
from proofflow.verifiers.sandbox import Sandbox

TRIVIAL = "print(1 + 1)"
SLOW = "import time\nt = time.perf_counter()\nwhile time.perf_counter() - t < 0.05:\n    pass\nprint('done')"


_TICK = os.sysconf("SC_CLK_TCK")


def _cpu_s(zygotes: list[int]) -> float:
    """CPU seconds used so far by this process, its reaped children, and the zygotes
    (including the execution children they reaped)."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    total = me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime
    for pid in zygotes:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        total += sum(int(x) for x in fields[11:15]) / _TICK  # utime stime cutime cstime
    return total


def _rate(fn: Callable[[str], bool], code: str, n: int, threads: int, zygotes: list[int]) -> tuple[float, float, int]:
    """(executions per wall second, CPU ms per execution, failed runs)."""
    c0 = _cpu_s(zygotes)
    t0 = time.perf_counter()
    with ThreadPoolExecutor(threads) as ex:
        ok = sum(ex.map(lambda _: fn(code), range(n)))
    wall = time.perf_counter() - t0
    return n / wall, (_cpu_s(zygotes) - c0) / n * 1000, n - ok


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trivial", type=int, default=600)
    ap.add_argument("--slow", type=int, default=60)
    args = ap.parse_args()
    cores = os.cpu_count() or 1

    def naive(code: str) -> bool:
        p = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=30)
        return p.returncode == 0

    t0 = time.perf_counter()
    with Sandbox() as sb:
        startup = time.perf_counter() - t0

        failures: Counter[str] = Counter()

        def sandboxed(code: str) -> bool:
            r = sb.run(code, timeout_s=10)
            if r.outcome is not Outcome.PASS:
                failures[f"{r.outcome.value}/{r.reason}: {(r.stderr or str(r.details))[-120:]}"] += 1
            return r.outcome is Outcome.PASS

        for _ in range(20):  # warm-up
            sandboxed(TRIVIAL)
        rows = []
        for name, fn in (("sandbox (zygote pool, isolated)", sandboxed), ("naive subprocess.run python -c", naive)):
            n_triv = args.trivial if fn is sandboxed else max(50, args.trivial // 4)
            zy = sb.zygote_pids()
            triv, triv_cpu, bad1 = _rate(fn, TRIVIAL, n_triv, sb.size, zy)
            slow, _, bad2 = _rate(fn, SLOW, args.slow, sb.size, zy)
            rows.append((name, triv, triv_cpu, slow, bad1 + bad2))
    load = os.getloadavg()
    print(
        f"{cores} cores, pool size {cores}, {cores} client threads; sandbox start-up {startup:.2f} s; "
        f"load average at end {load[0]:.1f}"
    )
    print()
    print(
        f"| {'executor':<32} | {'trivial exec/s':>14} | {'CPU ms / trivial exec':>21} "
        f"| {'50 ms program exec/s':>20} | {'failed runs':>11} |"
    )
    print(f"|{'-' * 34}|{'-' * 16}|{'-' * 23}|{'-' * 22}|{'-' * 13}|")
    for name, triv, triv_cpu, slow, bad in rows:
        print(f"| {name:<32} | {triv:>14.0f} | {triv_cpu:>21.2f} | {slow:>20.1f} | {bad:>11} |")
    print(
        f"\nspeed-up on trivial programs: {rows[0][1] / rows[1][1]:.1f}x; "
        f"CPU-bound ceiling on {cores} idle cores: {cores * 1000 / rows[0][2]:.0f} trivial exec/s (sandbox)"
    )
    for why, n in failures.most_common():
        print(f"sandbox failure x{n}: {why}")


if __name__ == "__main__":
    main()
