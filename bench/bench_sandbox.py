"""Sandbox throughput vs one ``subprocess.run([python, -c, code])`` per execution.

    python bench/bench_sandbox.py [--trivial 600] [--slow 60]

Both sides run with the same number of client threads (the pool size, one per core), so
the baseline gets the same parallelism. "50 ms program" busy-loops for 50 ms of CPU.
The baseline has no isolation at all (no namespaces, no uid drop, no limits).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from proofflow.verifiers.python_exec import Outcome, Sandbox

TRIVIAL = "print(1 + 1)"
SLOW = "import time\nt = time.perf_counter()\nwhile time.perf_counter() - t < 0.05:\n    pass\nprint('done')"


def _rate(fn: Callable[[str], bool], code: str, n: int, threads: int) -> tuple[float, int]:
    t0 = time.perf_counter()
    with ThreadPoolExecutor(threads) as ex:
        ok = sum(ex.map(lambda _: fn(code), range(n)))
    return n / (time.perf_counter() - t0), n - ok


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
            triv, bad1 = _rate(fn, TRIVIAL, n_triv, sb.size)
            slow, bad2 = _rate(fn, SLOW, args.slow, sb.size)
            rows.append((name, triv, slow, bad1 + bad2))
    load = os.getloadavg()
    print(f"{cores} cores, pool size {cores}, {cores} client threads; sandbox start-up {startup:.2f} s; "
          f"load average at end {load[0]:.1f}")
    print()
    print(f"| {'executor':<32} | {'trivial exec/s':>14} | {'50 ms program exec/s':>20} | {'failed runs':>11} |")
    print(f"|{'-' * 34}|{'-' * 16}|{'-' * 22}|{'-' * 13}|")
    for name, triv, slow, bad in rows:
        print(f"| {name:<32} | {triv:>14.0f} | {slow:>20.1f} | {bad:>11} |")
    print(f"\nspeed-up on trivial programs: {rows[0][1] / rows[1][1]:.1f}x")
    for why, n in failures.most_common():
        print(f"sandbox failure x{n}: {why}")


if __name__ == "__main__":
    main()
