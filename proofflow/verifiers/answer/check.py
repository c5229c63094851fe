"""The answer verifier's Verdict: extract, decide, and say why (feedback never leaks the reference)."""

from __future__ import annotations

import time

from proofflow.verifiers.answer.equivalence import decide, normalize_answer
from proofflow.verifiers.answer.extraction import Extraction, extract_answer, reference_answer
from proofflow.verifiers.verdict import ANSWER, Outcome, Verdict

VERSION = "answer-1.1"

__all__ = ["VERSION", "check_answer"]


def check_answer(
    completion: str,
    reference: str,
    timeout_s: float = 5.0,
    allow_last_number: bool = True,
) -> Verdict:
    """Verdict on a completion's final answer. Feedback never contains the reference."""
    t0 = time.monotonic()
    ex = extract_answer(completion or "")
    details: dict[str, object] = {"method": ex.method}

    def verdict(outcome: Outcome, reason: str, feedback: str, **extra: object) -> Verdict:
        details.update(extra)
        return Verdict(
            verifier=ANSWER,
            verifier_version=VERSION,
            outcome=outcome,
            reason=reason,
            answer=ex.answer,
            feedback=feedback,
            details=details,
            duration_s=time.monotonic() - t0,
        )

    if ex.answer is None or (ex.method == "last_number" and not allow_last_number):
        if ex.method == "last_number":
            details["fallback_disabled"] = True
            ex = Extraction(None, "none")
        return verdict(
            Outcome.FAIL,
            "no_answer",
            "No final answer was found. State the final answer once, as \\boxed{...}.",
        )
    # The vote key, stored so SQL's maj@k groups answers exactly as select.py does.
    details["normalized"] = normalize_answer(ex.answer)
    gold = reference_answer(reference)
    try:
        d = decide(ex.answer, gold, timeout_s)
    except Exception as exc:  # defensive: a checker bug is an ERROR, never a pass
        return verdict(Outcome.ERROR, "checker_error", "", error=f"{type(exc).__name__}: {exc}")
    details["decided_by"] = d.status
    if d.equal is True:
        return verdict(Outcome.PASS, "correct", f"The final answer {ex.answer} is correct.")
    if d.equal is False:
        return verdict(
            Outcome.FAIL,
            "wrong_answer",
            f"The final answer {ex.answer} is incorrect. Re-check the reasoning and the "
            "arithmetic, then give the corrected final answer as \\boxed{...}.",
        )
    if d.status == "timeout":
        return verdict(Outcome.TIMEOUT, "timeout", "")
    if d.status == "candidate_unparseable":
        return verdict(
            Outcome.FAIL,
            "unparseable",
            f"The final answer {ex.answer} could not be read as a mathematical expression. "
            "Write it as a single simplified LaTeX expression in \\boxed{...}.",
        )
    if d.status == "reference_unparseable":
        # Not the model's fault: the checker could not read the reference.
        return verdict(Outcome.ERROR, "unparseable", "", which="reference")
    return verdict(Outcome.ERROR, "checker_error", "")
