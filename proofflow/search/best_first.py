"""Best-first step search over proof states (ReProver / BFS-Prover style), independent of
models, storage and flows: a pure loop over an injected `propose(node)` and a proof-state
interface with LeanDojo's `run_tac` shape (verifiers/lean/proofstate.py).

The loop: take the best open state (highest score; by default the cumulative
log-probability of its tactic path, ReProver's priority), ask `propose` for its next
tactics (K at once, each with its log-probability), apply each, and push the new states.
States with the same pretty-printed goals are merged (the first one reached is kept; the
later edge is recorded as `duplicate`). It stops at the first `ProofFinished`, when no
open state is left, or at a budget (expansions, wall time, tokens). The search decides no
verdict: the caller assembles the tactic path into a proof and checks it as a whole.

`propose` may raise `Pause` to stop the loop where it is (the caller persists what was
found and runs the search again later; with stored expansions the rerun reaches the same
point without asking the model again).
"""

from __future__ import annotations

import heapq
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal, Protocol

from proofflow.verifiers.lean.proofstate import LeanError, ProofFinished, TacResult, TacticState


@dataclass(frozen=True)
class Proposal:
    """One proposed next tactic: its text, log-probability and what it cost in tokens."""

    tactic: str
    logprob: float
    tokens: int = 0


@dataclass(frozen=True)
class SearchBudget:
    """Per goal. `max_tokens` counts the model's completion tokens (None: no limit)."""

    max_expansions: int = 32
    wall_s: float = 300.0
    max_tokens: int | None = None


class ProofStateInterface(Protocol):
    def run_tac(self, state: TacticState, tactic: str) -> TacResult: ...

    def tactics(self, state: TacticState | ProofFinished | int) -> list[str]: ...


Outcome = Literal["open", "proved", "error", "duplicate", "timeout", "crash"]
StopReason = Literal["proved", "exhausted", "expansions", "wall_time", "tokens", "paused"]


@dataclass
class SearchNode:
    """A state of the search tree: `path` is the tactics from the root."""

    index: int
    state: TacticState
    parent: int | None
    path: tuple[str, ...]
    logprob_sum: float
    expanded: bool = False

    @property
    def depth(self) -> int:
        return len(self.path)


@dataclass(frozen=True)
class Tried:
    """One tactic applied to one node, and what it did."""

    parent: int
    tactic: str
    logprob: float
    outcome: Outcome
    child: int | None = None      # the new node (open), or the node it merged into (duplicate)
    goals: tuple[str, ...] = ()
    error: str | None = None
    child_path: tuple[str, ...] | None = None  # that node's tactic path


@dataclass
class SearchResult:
    stop_reason: StopReason
    tactics: list[str] | None                 # the proof's tactic path when proved
    nodes: list[SearchNode] = field(default_factory=list)
    tried: list[Tried] = field(default_factory=list)
    expansions: int = 0
    tokens: int = 0
    elapsed_s: float = 0.0

    @property
    def proved(self) -> bool:
        return self.tactics is not None


class Pause(Exception):  # noqa: N818 - a signal to stop, not an error
    """Raised by `propose` to stop the search where it is (see the module docstring)."""


Score = Callable[[SearchNode], float]


def cumulative_logprob(node: SearchNode) -> float:
    """ReProver's priority: the sum of the log-probabilities of the path's tactics."""
    return node.logprob_sum


def best_first_search(
    root: TacticState,
    env: ProofStateInterface,
    propose: Callable[[SearchNode], list[Proposal]],
    budget: SearchBudget,
    score: Score = cumulative_logprob,
    on_expansion: Callable[[SearchNode, list[Tried]], None] | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> SearchResult:
    """Search from `root` until a proof, exhaustion or a budget (module docstring)."""
    t0 = clock()
    result = SearchResult(stop_reason="exhausted", tactics=None)
    nodes = result.nodes
    nodes.append(SearchNode(0, root, None, (), 0.0))
    seen: dict[str, int] = {root.pp: 0}
    order = 0
    frontier: list[tuple[float, int, int]] = [(-score(nodes[0]), order, 0)]

    def finish(reason: StopReason) -> SearchResult:
        result.stop_reason = reason
        result.elapsed_s = clock() - t0
        return result

    while frontier:
        if result.expansions >= budget.max_expansions:
            return finish("expansions")
        if clock() - t0 >= budget.wall_s:
            return finish("wall_time")
        if budget.max_tokens is not None and result.tokens >= budget.max_tokens:
            return finish("tokens")
        _, _, best = heapq.heappop(frontier)
        node = nodes[best]
        try:
            proposals = propose(node)
        except Pause:
            return finish("paused")
        node.expanded = True
        result.expansions += 1
        result.tokens += sum(p.tokens for p in proposals)
        tried: list[Tried] = []
        done: set[str] = set()
        for p in proposals:
            tactic = p.tactic.strip()
            if not tactic or tactic in done:  # the same text twice in one expansion: one try
                continue
            done.add(tactic)
            r = env.run_tac(node.state, tactic)
            if isinstance(r, ProofFinished):
                tried.append(Tried(best, tactic, p.logprob, "proved"))
                result.tactics = [*node.path, tactic]
                break
            if isinstance(r, LeanError):
                kind: Outcome = "timeout" if r.kind == "timeout" else "error" if r.kind == "tactic" else "crash"
                tried.append(Tried(best, tactic, p.logprob, kind, error=r.error))
                continue
            if r.pp in seen:
                same = nodes[seen[r.pp]]
                tried.append(Tried(best, tactic, p.logprob, "duplicate", child=same.index, goals=r.goals,
                                   child_path=same.path))
                continue
            child = SearchNode(len(nodes), r, best, (*node.path, tactic), node.logprob_sum + p.logprob)
            nodes.append(child)
            seen[r.pp] = child.index
            order += 1
            heapq.heappush(frontier, (-score(child), order, child.index))
            tried.append(Tried(best, tactic, p.logprob, "open", child=child.index, goals=r.goals,
                               child_path=child.path))
        result.tried.extend(tried)
        if on_expansion is not None:
            on_expansion(node, tried)
        if result.tactics is not None:
            return finish("proved")
    return finish("exhausted")


def tactic_script(tactics: list[str], indent: str = "  ") -> str:
    """The tactic path as the lines of a `by` block (multi-line tactics keep their shape)."""
    lines: list[str] = []
    for t in tactics:
        for line in t.splitlines() or [""]:
            lines.append(indent + line)
    return "\n".join(lines)


def assemble(statement: str, tactics: list[str]) -> str:
    """A whole proof for the checker: the statement (`... := by`) and the tactic script."""
    stmt = statement.rstrip()
    if not stmt.endswith("by"):
        stmt = stmt + (" by" if stmt.endswith(":=") else " := by")
    return stmt + "\n" + tactic_script(tactics) + "\n"
