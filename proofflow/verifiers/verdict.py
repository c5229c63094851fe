"""The one result type every verifier returns."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any


class Outcome(str, enum.Enum):
    """What a check concluded.

    Only PASS means "checked and correct". A checker that crashed (ERROR) or ran out of
    time (TIMEOUT) never counts as a pass, and neither does anything it could not parse.
    """

    PASS = "pass"
    FAIL = "fail"
    ERROR = "error"
    TIMEOUT = "timeout"


@dataclass(frozen=True)
class Verdict:
    verifier: str
    verifier_version: str
    outcome: Outcome
    # Machine-readable cause, e.g. "wrong_answer", "no_answer", "sorry", "axiom".
    reason: str | None = None
    # What the candidate claimed (an extracted final answer), if the verifier has one.
    answer: str | None = None
    # Text a model can act on in a repair round. Must not leak the reference answer.
    feedback: str = ""
    details: dict[str, Any] = field(default_factory=dict)
    duration_s: float = 0.0

    @property
    def passed(self) -> bool:
        return self.outcome is Outcome.PASS
