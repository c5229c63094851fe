"""The one result type every verifier returns, and the verifier names verdicts are stored
under (the `verdicts.verifier` column; the SQL views and the stages read these)."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

# Verifier names, in one place. A formal check also leaves a raw verdict under its
# backend's name (FormalBackend.name: `coq`, `lean`) and, on hole attempts, `hole_verifier`.
ANSWER = "answer"  # final-answer equivalence (verifiers/answer/)
PYTHON_EXEC = "python_exec"  # the model's program ran cleanly in the sandbox (program of thought)
SELF_VERIFY = "self_verify"  # the model's own checking code, run in the sandbox (csv)
FORMAL_AUDIT = "formal_audit"  # the audited formal verdict: ground truth for formal problems


def hole_verifier(checker: str) -> str:
    """Did a tactic close its hole (`coq_hole`): deliberately not a ground-truth name."""
    return f"{checker}_hole"


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
