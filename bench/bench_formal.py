"""Formal checker bench: Coq checks/s with the warm coqtop pool vs one coqc per check,
verdict-cache hit rate on a rerun; with --lean N, the wasm Lean's warm checker vs one
process per check (lean_rows).

    python bench/bench_formal.py [--rounds N] [--workers W] [--lean N] [--lean-only]

The workload is the bundled Coq example set: for every problem a hole sketch (`admit`,
incomplete), a broken proof (error) and, where a reference proof exists, the complete
proof (which also pays `Print Assumptions`). Same proofs, same order, for both modes.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from proofflow.problems import coq_examples  # noqa: E402
from proofflow.verifiers.coq import CoqChecker, CoqConfig  # noqa: E402
from proofflow.verifiers.formal import VerdictCache  # noqa: E402
from proofflow.verifiers.registry import check_cached  # noqa: E402


def workload() -> list[tuple]:
    problems = {p.metadata["id"]: p for p in coq_examples()}
    refs = {json.loads(line)["id"]: json.loads(line)["proof"]
            for line in (ROOT / "tests/data/coq_reference_proofs.jsonl").read_text().splitlines()}
    items = []
    for pid, p in problems.items():
        items.append((p, p.statement + "\nProof.\n  intros.\n  admit.\nAdmitted.\n"))
        items.append((p, p.statement + "\nProof.\n  intros.\n  exact I.\nQed.\n"))
        if pid in refs:
            items.append((p, refs[pid]))
    return items


def run(mode: str, workers: int, items: list[tuple], rounds: int) -> dict:
    with CoqChecker(CoqConfig(mode=mode, workers=workers, timeout_s=30)) as ch:
        if mode == "session":  # start the processes outside the timed region, as a server would
            with ThreadPoolExecutor(workers) as ex:
                list(ex.map(lambda it: ch.check(*it), items[:workers]))
        durations: dict[str, list[float]] = {}
        t0 = time.perf_counter()
        with ThreadPoolExecutor(workers) as ex:
            for _ in range(rounds):
                for r in ex.map(lambda it: ch.check(*it), items):
                    durations.setdefault(r.status, []).append(r.duration_s)
        wall = time.perf_counter() - t0
        stats = ch.stats
    n = sum(len(v) for v in durations.values())
    return {"mode": mode, "workers": workers, "checks": n, "wall": wall, "rate": n / wall,
            "by_status": {k: (len(v), statistics.mean(v)) for k, v in sorted(durations.items())},
            "stats": stats}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--lean", type=int, default=0, help="also the wasm Lean rows, with this many checks")
    ap.add_argument("--lean-only", action="store_true", help="only the Lean rows (needs --lean N)")
    args = ap.parse_args()
    if args.lean_only:
        lean_rows(args.lean or 10)
        return
    if not shutil.which("coqc"):
        sys.exit("coqc not found: apt-get install -y coq")
    items = workload()
    print(f"workload: {len(items)} Coq checks x {args.rounds} round(s) from the bundled example set\n")
    rows = []
    for mode in ("coqc", "session"):
        for workers in sorted({1, args.workers}):
            rows.append(run(mode, workers, items, args.rounds))
    print(f"{'mode':<9}{'workers':>8}{'checks':>8}{'wall s':>9}{'checks/s':>10}  mean s by status")
    for r in rows:
        by = ", ".join(f"{k} {n}x {m:.3f}" for k, (n, m) in r["by_status"].items())
        print(f"{r['mode']:<9}{r['workers']:>8}{r['checks']:>8}{r['wall']:>9.2f}{r['rate']:>10.2f}  {by}")
    base = {r["workers"]: r["rate"] for r in rows if r["mode"] == "coqc"}
    for r in rows:
        if r["mode"] == "session":
            print(f"session / coqc speed-up at {r['workers']} worker(s): {r['rate'] / base[r['workers']]:.1f}x"
                  f"  (coqtop spawns {r['stats']['spawns']}, header loads {r['stats']['header_loads']})")

    # Verdict cache: the same run twice; the second pass must not touch Coq.
    cache = VerdictCache()
    with CoqChecker(CoqConfig(mode="session", workers=1)) as ch:
        t0 = time.perf_counter()
        for p, src in items:
            check_cached(ch, p, src, cache)
        first = time.perf_counter() - t0
        hits_before = cache.hits
        t0 = time.perf_counter()
        for p, src in items:
            check_cached(ch, p, src, cache)
        second = time.perf_counter() - t0
    rerun_hits = cache.hits - hits_before
    print(f"\nverdict cache: first pass {first:.2f}s ({hits_before} hits), rerun {second * 1000:.1f} ms, "
          f"rerun hit rate {rerun_hits / len(items):.0%} ({rerun_hits}/{len(items)})")

    if args.lean:
        lean_rows(args.lean)


def lean_rows(n: int) -> None:
    """The wasm Lean (core Lean, no Mathlib): the warm checker pool (one process, n checks)
    vs one process per check, start-up, peak memory per process, the audit's cost per check
    (inside Lean, and the Python side), and the verdict cache on a rerun. Core-Lean proofs
    are far cheaper to check than Kimina's Mathlib proofs (~0.17 proofs/s per core with warm
    REPLs there); only the per-process start-up is comparable."""
    from proofflow.problems import example_path, load_formal_problems
    from proofflow.verifiers.lean.install import find_wasm_lean
    from proofflow.verifiers.lean.program import LeanProgramChecker, ProgramConfig, run_batch, to_result
    from proofflow.verifiers.registry import audit

    wasm = find_wasm_lean()
    if wasm is None:
        sys.exit("wasm Lean not installed: python -m proofflow.verifiers.lean.install")
    cfg = ProgramConfig(lean_command=(str(wasm.lean),), workers=1, memory_mb=2048, wasm=True,
                        version="4.28.0-pre+wasm")
    omega = [p for p in load_formal_problems(example_path("lean_examples")) if p.metadata["automation"] == "omega"]
    problem = omega[0]
    sources = [problem.statement + "\n  " + t + "\n" for t in ("omega", "simp", "decide", "grind", "sorry")]
    sources = (sources * n)[:n]
    print(f"\nLean (wasm 4.28.0-pre, core Lean), {n} checks of {problem.name}:")

    with LeanProgramChecker(cfg) as warm:
        t0 = time.perf_counter()
        warm.check(problem, sources[0])  # start-up + header import + one check
        first_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        results = [warm.check(problem, src) for src in sources]
        warm_s = time.perf_counter() - t0
        pid = next(w.child.pid for w in warm.pool.workers() if w.child.alive())
        peak_mb = _peak_rss_mb(pid)
    median_s = statistics.median(r.duration_s for r in results)
    print(f"  warm pool, 1 process: start-up + first check {first_s:.1f} s (starts: {warm.starts}); then {n} checks "
          f"in {warm_s:.2f} s ({n / warm_s:.1f} checks/s, median {median_s:.3f} s)")
    print(f"  peak resident memory of the process: {peak_mb:.0f} MB")

    per = LeanProgramChecker(ProgramConfig(**{**cfg.__dict__, "per_check_process": True}))
    t0 = time.perf_counter()
    for src in sources[:2]:
        per.check(problem, src)
    per_s = (time.perf_counter() - t0) / 2
    print(f"  one process per check: {per_s:.1f} s per check ({1 / per_s:.3f} checks/s); "
          f"warm / per-check ratio {(n / warm_s) / (1 / per_s):.0f}x "
          f"(with the start-up counted: {(n / (warm_s + first_s)) / (1 / per_s):.1f}x)")

    answers = run_batch(cfg, problem.header, [{"source": s, "name": problem.name, "statement": problem.statement}
                                              for s in sources])
    audit_ms = [a.get("audit_ms", 0) for a in answers if "error" not in a]
    check_ms = [a.get("time_ms", 0) for a in answers if "error" not in a]
    batch_results = [to_result(a, per.version, 0.0) for a in answers]
    t0 = time.perf_counter()
    verdicts = [audit(problem, s, r).outcome.value for s, r in zip(sources, batch_results)]
    py_audit_ms = (time.perf_counter() - t0) * 1000 / n
    print(f"  audit per check: in Lean {statistics.mean(audit_ms):.1f} ms of {statistics.mean(check_ms):.1f} ms "
          f"(mean); Python side {py_audit_ms:.2f} ms")
    cache = VerdictCache()
    for src, r in zip(sources, results):
        cache.put(VerdictCache.key(per, problem, src), r)
    t0 = time.perf_counter()
    hits = sum(cache.get(VerdictCache.key(per, problem, s)) is not None for s in sources)
    print(f"  verdict cache rerun: {hits}/{n} hits ({hits / n:.0%}) in {(time.perf_counter() - t0) * 1000:.1f} ms")
    print(f"  verdicts: {dict((v, verdicts.count(v)) for v in sorted(set(verdicts)))}")


def _peak_rss_mb(pid: int | None) -> float:
    """VmHWM (peak resident set) of a live process, in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


if __name__ == "__main__":
    main()
