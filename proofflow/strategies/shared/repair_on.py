"""Whose verdict sends an answer sample to repair: one small module, imported both by the
answer strategies (a run's identity) and by the repair stage, and by neither's heavy
imports (the identity of a run is built before a resume lookup, which needs no model
client)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from proofflow.strategies.registry import strategy
from proofflow.verifiers.verdict import ANSWER

if TYPE_CHECKING:
    from proofflow.config import Settings


def repair_verifier(settings: Settings) -> str:
    """`[solve] repair_on` when set, else the strategy's own choice (the reference check;
    csv: the sample's own check)."""
    if settings.solve.repair_on is not None:
        return settings.solve.repair_on
    return str(getattr(strategy(settings.solve.strategy, "answer"), "repair_verifier", ANSWER))
