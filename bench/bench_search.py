"""Step search figures (docs/proving.md, "Tactic-level proving"):

1. tactics/s of the warm proof-state program (one process, many `run_tac`);
2. expansions/s of the best-first loop on the real Lean with a recorded tactic policy (a
   stand-in for the model: a fixed table from goal to proposed tactics);
3. the search's own orchestration overhead per expansion: the loop, the model-proposer's
   row building and the tree rows, with Lean and the model replaced by instant stand-ins,
   and its share of a real expansion (figure 2);
4. against 1: one `lean --run ProofState.lean` process per tactic (start-up paid every
   time), last and few (each is a whole Lean start: 30-140 s on the wasm build here).

    python bench/bench_search.py [--tactics 60] [--cold 3] [--cold-timeout 600]

Needs the wasm Lean (python -m proofflow.verifiers.lean.install) or `--lean lean`.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import time
import uuid

from proofflow.config import load_settings
from proofflow.llm.client import Choice, Request, Response
from proofflow.search import Proposal, SearchBudget, SearchNode, best_first_search
from proofflow.search.stage import ModelProposer, search_goal
from proofflow.tasks.context import RunContext
from proofflow.verifiers.lean.install import find_wasm_lean
from proofflow.verifiers.lean.program import ProgramConfig, memory_limits
from proofflow.verifiers.lean.proofstate import (
    LeanError,
    ProofFinished,
    ProofStates,
    TacResult,
    TacticState,
    proofstate_file,
    statement_source,
)

SWAP = "theorem and_swap (p q : Prop) : p ∧ q → q ∧ p := by"
THEOREMS = [
    SWAP,
    "theorem or_swap (p q : Prop) : p ∨ q → q ∨ p := by",
    "theorem zero_add' (n : Nat) : 0 + n = n := by",
    "theorem le_succ' (n : Nat) : n ≤ n + 1 := by",
]
# Recorded tactic policy: target of the first goal -> tactics with log-probabilities.
POLICY: dict[str, list[tuple[str, float]]] = {
    "p ∧ q → q ∧ p": [("intro h", -0.2), ("exact fun h => h", -0.5), ("simp", -3.0)],
    "q ∧ p": [("exact h", -0.1), ("constructor", -0.4), ("cases h", -0.6)],
    "q": [("exact h.2", -0.5), ("assumption", -0.6)],
    "p": [("exact h.1", -0.5), ("assumption", -0.6)],
    "p ∨ q → q ∨ p": [("intro h", -0.1)],
    "q ∨ p": [("cases h", -0.2), ("exact h", -0.1)],
    "0 + n = n": [("rfl", -0.1), ("simp", -0.3), ("omega", -0.7)],
    "n ≤ n + 1": [("exact Nat.le_succ n", -0.4), ("omega", -0.5)],
}
SEQUENCE = ["intro h", "constructor", "exact h.2", "exact h.1"]


def target(state: TacticState) -> str:
    return state.goals[0].rsplit("⊢ ", 1)[-1].strip() if state.goals else ""


def policy(node: SearchNode) -> list[Proposal]:
    return [Proposal(t, lp, 3) for t, lp in POLICY.get(target(node.state), [])]


def warm_tactics(states: ProofStates, n: int) -> tuple[float, list[float]]:
    root = states.initial_state("", SWAP)
    assert isinstance(root, TacticState), root
    times = []
    done = 0
    while done < n:
        state: TacResult = root
        for tac in SEQUENCE:
            assert isinstance(state, TacticState), state
            t0 = time.perf_counter()
            state = states.run_tac(state, tac)
            times.append(time.perf_counter() - t0)
            done += 1
        assert isinstance(state, ProofFinished), state
    return sum(times), times


def cold_tactic(config: ProgramConfig, timeout_s: float) -> float | None:
    """One process for one tactic: header, start, run_tac on stdin; wall time (None: it
    did not answer within `timeout_s`)."""
    prog = proofstate_file()
    batch = prog.parent / f"bench-{os.getpid()}-{uuid.uuid4().hex[:6]}.jsonl"
    batch.write_text("\n".join([json.dumps({"header": ""}),
                                json.dumps({"id": 1, "op": "start", "source": statement_source(SWAP)}),
                                json.dumps({"id": 2, "op": "run_tac", "state": 0, "tactic": "intro h"})]) + "\n")
    limits, env = memory_limits(config)
    t0 = time.perf_counter()
    try:
        with batch.open("rb") as stdin:
            out = subprocess.run(limits.wrap([*config.lean_command, "--run", str(prog)]), stdin=stdin,
                                 capture_output=True, env=env, timeout=timeout_s, cwd=str(prog.parent),
                                 start_new_session=True)
    except subprocess.TimeoutExpired:
        return None
    finally:
        batch.unlink(missing_ok=True)
    wall = time.perf_counter() - t0
    assert b'"state":1' in out.stdout, out.stdout[-500:] + out.stderr[-500:]
    return wall


class InstantEnv:
    """A stand-in for Lean (overhead measurement only): every tactic but `bad` opens a new
    state named by its path; nothing is ever proved, so the search runs to its budget."""

    def __init__(self) -> None:
        self.paths: dict[int, tuple[str, ...]] = {0: ()}

    def run_tac(self, state: TacticState, tactic: str) -> TacResult:
        path = (*self.paths[state.id], tactic)
        if tactic == "bad":
            return LeanError("unknown tactic")
        sid = len(self.paths)
        self.paths[sid] = path
        pp = "⊢ " + " ".join(path)
        return TacticState(pp=pp, id=sid, goals=(pp,))

    def tactics(self, state: object) -> list[str]:
        return []


class InstantModel:
    """A stand-in for the model server (overhead measurement only)."""

    def __call__(self, request: Request) -> Response:
        names = ["a", "b", "bad", "done"][: request.n]
        choices = [Choice(text=t, finish_reason="stop", completion_tokens=2, tokens_exact=True, logprob=-0.1 * (i + 1))
                   for i, t in enumerate(names)]
        return Response(call_id="c_" + uuid.uuid4().hex[:8], endpoint="instant", model="instant", seed=request.seed,
                        choices=choices, prompt_tokens=10, completion_tokens=2 * request.n, latency_s=0.0, cost=None)


def overhead(expansions: int) -> tuple[float, int]:
    ctx = RunContext("bench-run", "bench", "bench", load_settings(None, {}))
    root = TacticState(pp="⊢ goal", id=0, goals=("⊢ goal",))
    env = InstantEnv()
    proposer = ModelProposer(ctx, "p_bench", "theorem", 4, InstantModel(), {},
                             prompt=lambda node: "state: " + node.state.pp)
    t0 = time.perf_counter()
    got = search_goal(ctx, "p_bench", "theorem", root, env, proposer,
                      SearchBudget(max_expansions=expansions, wall_s=3600))
    return time.perf_counter() - t0, got.result.expansions


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tactics", type=int, default=60, help="warm run_tac calls to time")
    ap.add_argument("--cold", type=int, default=3, help="one-process-per-tactic runs to time (each a Lean start)")
    ap.add_argument("--cold-timeout", type=float, default=600.0, help="seconds one cold process may take")
    ap.add_argument("--lean", default=None, help="lean command (default: the wasm build)")
    ap.add_argument("--overhead-only", action="store_true", help="only figure 3 (no Lean process)")
    args = ap.parse_args()
    if args.overhead_only:
        print_overhead(None)
        return
    if args.lean:
        command: tuple[str, ...] = (args.lean,)
    else:
        wasm = find_wasm_lean()
        if wasm is None:
            raise SystemExit("no Lean: python -m proofflow.verifiers.lean.install, or --lean lean")
        command = (str(wasm.lean),)
    config = ProgramConfig(lean_command=command, workers=1, timeout_s=60.0, memory_mb=1500)

    print(f"step search bench (2 shared CPU cores; figures are noisy); load average at start: {load()}\n")
    with ProofStates(config) as states:
        t0 = time.perf_counter()
        warm_tactics(states, 4)  # start-up and the first requests
        startup = time.perf_counter() - t0
        total, times = warm_tactics(states, args.tactics)
        warm_s = total / len(times)
        print(f"1. warm program: start-up + first 4 tactics {startup:.1f} s; "
              f"then {len(times)} tactics in {total:.2f} s = {len(times) / total:.1f} tactics/s "
              f"(median {statistics.median(times) * 1000:.1f} ms, "
              f"max {max(times) * 1000:.1f} ms)")

        # 2. before the cold processes, so that a slow start cannot leave it unmeasured
        expansions, tried, elapsed, proved = 0, 0, 0.0, 0
        for stmt in THEOREMS:
            root = states.initial_state("", stmt)
            assert isinstance(root, TacticState), root
            t0 = time.perf_counter()
            r = best_first_search(root, states, policy, SearchBudget(max_expansions=16, wall_s=300))
            elapsed += time.perf_counter() - t0
            expansions += r.expansions
            tried += len(r.tried)
            proved += r.proved
            print(f"   {stmt.split()[1]:<10} {r.stop_reason:<10} {r.expansions} expansions, "
                  f"{len(r.tried)} tactics tried, path {r.tactics}")
        print(f"2. search on the real Lean, recorded policy: {proved}/{len(THEOREMS)} proved, {expansions} expansions "
              f"({tried} tactics) in {elapsed:.2f} s = {expansions / elapsed:.1f} expansions/s, "
              f"{elapsed / expansions * 1000:.1f} ms per expansion")
    per_expansion = print_overhead(elapsed / expansions)

    if args.cold:
        colds: list[float] = []
        for _ in range(args.cold):
            wall = cold_tactic(config, args.cold_timeout)
            if wall is None:
                print(f"   a cold process did not answer within {args.cold_timeout:.0f} s; stopped")
                break
            colds.append(wall)
            print(f"   cold process {len(colds)}: {wall:.1f} s (load average {load()})")
        if colds:
            cold = statistics.mean(colds)
            print(f"4. one process per tactic: {', '.join(f'{c:.1f}' for c in colds)} s = {1 / cold:.4f} tactics/s; "
                  f"warm / cold: {cold / warm_s:.0f}x faster warm")
    print(f"\n(overhead per expansion {per_expansion * 1e6:.0f} µs; load average at the end: {load()})")


def load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def print_overhead(real_expansion_s: float | None) -> float:
    """Figure 3; with the real search's time per expansion, the share the orchestration takes."""
    secs, n = overhead(2000)
    per = secs / n
    share = f", {per / real_expansion_s * 100:.1f}% of an expansion on the real Lean" if real_expansion_s else ""
    print(f"3. orchestration overhead (instant Lean and model stand-ins, K=4, rows built): {n} expansions in "
          f"{secs:.2f} s = {per * 1e6:.0f} µs per expansion{share}")
    return per


if __name__ == "__main__":
    main()
