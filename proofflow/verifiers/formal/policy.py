"""What the audit enforces (`AuditPolicy`) and the rejections decided from the text alone
(`static_rejections`, by the backend's rules), with every reason string the audit can record."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from proofflow.verifiers.formal.text import normalize_ws
from proofflow.verifiers.formal.types import FormalProblem

if TYPE_CHECKING:
    from proofflow.verifiers.formal.backend import FormalBackend


@dataclass(frozen=True)
class AuditPolicy:
    """What the audit enforces. Every check can be switched off for experiments; the
    defaults are the strict ones."""

    # The axioms a proof may depend on; for_backend sets the backend's (Lean: propext,
    # Classical.choice, Quot.sound; Coq: none, "Closed under the global context").
    allowed_axioms: frozenset[str] = frozenset()
    require_exact_statement: bool = True
    reject_native_decide: bool = True
    reject_implemented_by: bool = True  # also @[extern]
    reject_skip_kernel_tc: bool = True  # Lean debug.skipKernelTC / Coq guard/positivity/universe bypass
    reject_redefinitions: bool = True  # the theorem's name or a name it uses, redefined
    reject_notations: bool = True  # new notation / macro / syntax in the proof
    reject_search_tactics: bool = True  # exact? / apply? / rw? left in
    reject_axiom_decls: bool = True  # Axiom / Parameter / axiom in the proof source
    reject_session_commands: bool = True  # Coq: Load, Reset, Back, Quit, Cd, Redirect, ...
    # Coq: modules a proof may Require beyond its header; None = any (Print Assumptions
    # still catches the axioms an extra library brings in).
    allowed_requires: frozenset[str] | None = None

    @classmethod
    def for_backend(cls, backend: FormalBackend, **overrides: Any) -> AuditPolicy:
        base: dict[str, Any] = {"allowed_axioms": backend.allowed_axioms}
        base.update(overrides)
        return cls(**base)


def static_rejections(problem: FormalProblem, source: str, policy: AuditPolicy, backend: FormalBackend) -> list[str]:
    """Rejections decided from the text alone (before or without running a checker).
    Each returned string is one reason; a source can have several."""
    code = backend.strip_comments(source)
    reasons: list[str] = []
    for rule in backend.text_rules:
        if getattr(policy, rule.flag) and rule.pattern.search(code) and rule.reason not in reasons:
            reasons.append(rule.reason)
    if policy.require_exact_statement:
        core = backend.statement_core(problem.statement)
        norm = normalize_ws(code)
        count = norm.count(core)
        decls = len(backend.declaration(problem.name).findall(code))
        if count == 0:
            reasons.append("statement_mismatch" if decls else "statement_missing")
        elif count > 1 or decls > 1:
            reasons.append("theorem_redefined")
    if policy.reject_redefinitions:
        reasons.extend(_redefinitions(problem, code, backend))
    reasons.extend(r for r in backend.extra_rejections(problem, code, policy) if r not in reasons)
    return reasons


_IDENT = re.compile(r"[A-Za-z_][\w'.]*")
_STATEMENT_KEYWORDS = {"theorem", "lemma", "Theorem", "Lemma", "forall", "fun", "exists", "by", "Type", "Prop", "Set"}


def _redefinitions(problem: FormalProblem, code: str, backend: FormalBackend) -> list[str]:
    """A name the statement mentions (other than binders it introduces) declared again in
    the proof source changes what the statement means: reject it."""
    names = {
        n
        for n in _IDENT.findall(backend.statement_core(problem.statement))
        if n not in _STATEMENT_KEYWORDS and n != problem.name
    }
    for decl in backend.redefinition().finditer(code):
        declared = decl.group(1)
        if declared in names or declared.split(".")[-1] in names and "." in declared:
            return ["name_redefined"]
    return []


# Every reason string the audit can record, for docs and the report's audit table.
REJECTION_REASONS: dict[str, str] = {
    "compile_error": "the checker reported an error (first error in feedback)",
    "hole": "a sorry / admit / Admitted / Abort / give_up is left, or the proof is not closed",
    "statement_missing": "the problem's theorem statement does not appear in the source",
    "statement_mismatch": "the theorem is declared but its statement differs from the problem's",
    "statement_type_mismatch": (
        "the theorem's elaborated type (Coq Printing All, Lean REPL pp.all) differs from the statement "
        "elaborated on the header alone (Section variables, scope changes)"
    ),
    "variable_declared": "Lean: a `variable` in the proof source (it would be bound into the theorem)",
    "theorem_redefined": "the statement or the theorem's name appears more than once",
    "name_redefined": "a name used in the statement is redefined in the proof source",
    "nonstandard_axiom": "the proof depends on an axiom outside the allowed set",
    "axiom_declared": "the source declares an axiom (Axiom/Parameter/axiom/opaque/unsafe)",
    "native_decide": "Lean: native_decide / Lean.ofReduceBool (trusts the compiler)",
    "implemented_by": "Lean: @[implemented_by] swaps code the kernel never sees",
    "extern": "Lean: @[extern] declarations",
    "skip_kernel_tc": "Lean: set_option debug.skipKernelTC",
    "kernel_check_bypassed": "Coq: Unset Guard/Positivity/Universe Checking, bypass_check, type-in-type",
    "search_tactic_left": "Lean: exact? / apply? / rw? / simp? / aesop? left in the proof",
    "notation_declared": "the proof declares notation / macro / syntax that can change the statement's meaning",
    "session_command": "Coq: Load / Reset / Back / Quit / Cd / Redirect / Declare ML Module / Extraction ...",
    "unexpected_require": "Coq: Require of a module outside the header and the allow list",
    "axioms_unknown": "the checker did not report the axioms of a proof that otherwise checks (ERROR)",
    "timeout": "the check ran out of time (TIMEOUT)",
    "checker_crash": "the checker process died or broke protocol (ERROR)",
    "memory_limit": "the checker process ran out of its memory cap during the check (ERROR)",
}
