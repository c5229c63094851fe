"""Answer checker vs math-verify on the labeled pairs: checks/s, accuracy, false accepts/rejects.

    python bench/bench_answer.py [--rounds 3]

Both sides see the same (candidate, reference) strings. proofflow's checker runs cold
(its result cache is cleared before every round); its sympy worker is started before
timing. math-verify is called in-process as ``verify(parse(ref), parse(cand))`` with each
string wrapped in ``\\boxed{}`` so that parse reads the whole string as the answer.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path

from proofflow.verifiers import answer
from proofflow.verifiers.answer.equivalence import clear_cache, decide

PAIRS = Path(__file__).resolve().parents[1] / "tests" / "data" / "answer_pairs.jsonl"


def _math_verify() -> Callable[[str, str], bool | None]:
    from math_verify import parse, verify

    def check(cand: str, ref: str) -> bool | None:
        g = parse("\\boxed{" + ref + "}")
        p = parse("\\boxed{" + cand + "}")
        if not g or not p:
            return None
        return bool(verify(g, p))

    return check


def _ours(cand: str, ref: str) -> bool | None:
    return answer.answers_equivalent(cand, ref)


def _score(
    name: str, fn: Callable[[str, str], bool | None], pairs: list[dict], rounds: int, reset: Callable[[], None]
) -> dict:
    best = float("inf")
    got: list[bool | None] = []
    for _ in range(rounds):
        reset()
        t0 = time.perf_counter()
        got = [fn(p["candidate"], p["reference"]) for p in pairs]
        best = min(best, time.perf_counter() - t0)
    fa = [p for p, g in zip(pairs, got, strict=True) if g is True and not p["equivalent"]]
    fr = [p for p, g in zip(pairs, got, strict=True) if g is not True and p["equivalent"]]
    undecided = sum(g is None for g in got)
    correct = len(pairs) - len(fa) - len(fr)
    return {
        "name": name,
        "checks_per_s": len(pairs) / best,
        "accuracy": correct / len(pairs),
        "false_accepts": len(fa),
        "false_rejects": len(fr),
        "undecided": undecided,
        "fa_examples": [(p["candidate"], p["reference"]) for p in fa[:5]],
        "fr_examples": [(p["candidate"], p["reference"]) for p in fr[:8]],
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    pairs = [json.loads(line) for line in PAIRS.read_text().splitlines() if line.strip()]
    n_eq = sum(p["equivalent"] for p in pairs)
    answer.answers_equivalent("\\sqrt{2}", "\\sqrt{3}")  # start the sympy worker untimed
    rows = [
        _score(f"proofflow answer {answer.VERSION}", _ours, pairs, args.rounds, clear_cache),
        _score("math_verify parse+verify", _math_verify(), pairs, args.rounds, lambda: None),
    ]
    print(f"labeled pairs: {len(pairs)} ({n_eq} equivalent, {len(pairs) - n_eq} not); best of {args.rounds} rounds")
    print()
    print(
        f"| {'checker':<32} | {'checks/s':>9} | {'accuracy':>8} | {'false accepts':>13} "
        f"| {'false rejects':>13} | {'undecided':>9} |"
    )
    print(f"|{'-' * 34}|{'-' * 11}|{'-' * 10}|{'-' * 15}|{'-' * 15}|{'-' * 11}|")
    for r in rows:
        print(
            f"| {r['name']:<32} | {r['checks_per_s']:>9.0f} | {r['accuracy']:>8.1%} | "
            f"{r['false_accepts']:>13} | {r['false_rejects']:>13} | {r['undecided']:>9} |"
        )
    clear_cache()
    fast = sum(decide(p["candidate"], p["reference"], 5.0).status == "fast" for p in pairs)
    print(
        f"\nproofflow: {fast}/{len(pairs)} pairs decided in-process by the fast path, the rest by sympy in the worker"
    )
    for r in rows:
        print(f"\n{r['name']}:")
        print("  false accepts:", r["fa_examples"] or "none")
        print("  false rejects (first 8):", r["fr_examples"] or "none")


if __name__ == "__main__":
    main()
