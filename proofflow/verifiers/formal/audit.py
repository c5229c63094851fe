"""`audit`: turn a backend's CheckResult into the one Verdict that counts.

A backend only *runs* the checker and reports what it saw. Whether that amounts to a proof
is decided once, here: a checker saying "no errors" is necessary but not sufficient — the
statement must be the problem's, there must be no hole, no extra axiom and none of the
known tricks (issue #4). The backend (the problem's, from verifiers/registry.py, whose
`audit` looks it up by name) supplies the language's rules.
"""

from __future__ import annotations

from typing import Any

from proofflow.verifiers.formal.backend import FormalBackend
from proofflow.verifiers.formal.policy import AuditPolicy, static_rejections
from proofflow.verifiers.formal.types import CheckResult, FormalProblem
from proofflow.verifiers.verdict import Outcome, Verdict


def audit(problem: FormalProblem, source: str, result: CheckResult, policy: AuditPolicy | None = None, *,
          backend: FormalBackend) -> Verdict:
    """Turn a backend's CheckResult into the one Verdict that counts.

    PASS only when the checker finished with no error, there is no hole, the statement is
    the problem's (once), the axioms are within the allowed set and no rejection rule
    fires. The first reason found is `reason`; all of them are in details["reasons"].
    """
    policy = policy or AuditPolicy.for_backend(backend)
    verifier = f"{result.backend}"
    details: dict[str, Any] = {
        "status": result.status,
        "messages": [m.__dict__ for m in result.messages],
        "holes": [{"line": h.line, "column": h.column, "goal": h.goal, "kind": h.kind} for h in result.holes],
        "axioms": result.axioms,
    }

    def verdict(outcome: Outcome, reasons: list[str], feedback: str = "") -> Verdict:
        details["reasons"] = reasons
        return Verdict(
            verifier=verifier,
            verifier_version=result.version,
            outcome=outcome,
            reason=reasons[0] if reasons else None,
            feedback=feedback,
            details=details,
            duration_s=result.duration_s,
        )

    if result.status == "timeout":
        return verdict(Outcome.TIMEOUT, ["timeout"], "the check ran out of time")
    if result.status == "crash":  # the checker failed: not a fact about the proof (never cached)
        return verdict(Outcome.ERROR, result.rejections or ["checker_crash"], result.detail)

    # Text-level reasons first (they say most plainly what is wrong), then the checker's.
    reasons: list[str] = list(dict.fromkeys(static_rejections(problem, source, policy, backend) + result.rejections))
    if result.errors:
        reasons.insert(0, "compile_error")
    holes_in_text = backend.hole_pattern.search(backend.strip_comments(source))
    if result.holes or result.status == "incomplete" or holes_in_text:
        reasons.append("hole")
    if result.status == "complete" and not reasons:
        if result.axioms is None:
            return verdict(Outcome.ERROR, ["axioms_unknown"], "the checker did not report axioms")
        extra = sorted(set(result.axioms) - set(policy.allowed_axioms))
        if extra:
            details["extra_axioms"] = extra
            reasons.append("nonstandard_axiom")
    if result.status in ("error", "rejected", "incomplete") and not reasons:
        # The backend said "not complete" without a reason we know: never a pass.
        reasons.append(
            "compile_error" if result.status == "error" else "hole" if result.status == "incomplete" else "rejected"
        )
    if reasons:
        return verdict(Outcome.FAIL, list(dict.fromkeys(reasons)), feedback_text(result, reasons))
    return verdict(Outcome.PASS, [])


def feedback_text(result: CheckResult, reasons: list[str]) -> str:
    """What a repair round shows the model: the reasons, errors with positions, open goals."""
    lines = [f"rejected: {', '.join(dict.fromkeys(reasons))}"]
    for m in result.errors[:5]:
        where = f"line {m.line}, column {m.column}" if m.line is not None else "header"
        lines.append(f"error at {where}: {m.text.strip()}")
    for i, h in enumerate(result.holes[:5]):
        lines.append(f"hole {i} ({h.kind}) at line {h.line}: goal\n{h.goal.strip()}")
    return "\n".join(lines)
