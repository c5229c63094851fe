"""Tactic-level proving: a best-first step search over proof states (best_first.py) and its
use by the prove flows (docs/proving.md, "Tactic-level proving")."""

from proofflow.search.best_first import (
    Pause,
    Proposal,
    SearchBudget,
    SearchNode,
    SearchResult,
    Tried,
    assemble,
    best_first_search,
    cumulative_logprob,
    tactic_script,
)

__all__ = [
    "Pause",
    "Proposal",
    "SearchBudget",
    "SearchNode",
    "SearchResult",
    "Tried",
    "assemble",
    "best_first_search",
    "cumulative_logprob",
    "tactic_script",
]
