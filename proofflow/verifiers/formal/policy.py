"""What the audit enforces (`AuditPolicy`) and the rejections decided from the text alone
(`static_rejections`), with every reason string the audit can record."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from proofflow.verifiers.formal.text import name_decl_pattern, normalize_ws, statement_core, strip_comments
from proofflow.verifiers.formal.types import Backend, FormalProblem

LEAN_STANDARD_AXIOMS = frozenset({"propext", "Classical.choice", "Quot.sound"})


@dataclass(frozen=True)
class AuditPolicy:
    """What the audit enforces. Every check can be switched off for experiments; the
    defaults are the strict ones."""

    allowed_axioms: frozenset[str] = LEAN_STANDARD_AXIOMS  # Coq: empty = "Closed under the global context"
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
    def for_backend(cls, backend: Backend, **overrides: Any) -> AuditPolicy:
        base: dict[str, Any] = {"allowed_axioms": LEAN_STANDARD_AXIOMS if backend == "lean" else frozenset()}
        base.update(overrides)
        return cls(**base)


# Each rule: (reason, backend, policy flag, pattern). Patterns run on comment-free text.
_TEXT_RULES: list[tuple[str, Backend, str, re.Pattern[str]]] = [
    (
        "native_decide",
        "lean",
        "reject_native_decide",
        re.compile(r"\bnative_decide\b|\bdecide\s*\+\s*native|Lean\.ofReduceBool"),
    ),
    ("implemented_by", "lean", "reject_implemented_by", re.compile(r"\bimplemented_by\b")),
    ("extern", "lean", "reject_implemented_by", re.compile(r"@\[\s*extern\b|\bextern\b\s*\"")),
    ("skip_kernel_tc", "lean", "reject_skip_kernel_tc", re.compile(r"debug\.skipKernelTC")),
    ("search_tactic_left", "lean", "reject_search_tactics", re.compile(r"\b(?:exact|apply|rw|simp|aesop)\?")),
    (
        "notation_declared",
        "lean",
        "reject_notations",
        re.compile(
            r"(?m)^\s*(?:@\[[^\]]*\]\s*)?(?:local\s+|scoped\s+)?(?:notation|infixl?|infixr|prefix|postfix|macro|macro_rules|syntax|elab|elab_rules)\b"
        ),
    ),
    # A `variable` is bound into the theorem: same text, different statement. The REPL
    # backend also compares elaborated types; the Kimina backend relies on this rule.
    ("variable_declared", "lean", "reject_redefinitions", re.compile(r"(?m)^\s*variable\b")),
    (
        "axiom_declared",
        "lean",
        "reject_axiom_decls",
        re.compile(r"(?m)^\s*(?:private\s+|protected\s+)?(?:axiom|unsafe|opaque)\b"),
    ),
    (
        "kernel_check_bypassed",
        "coq",
        "reject_skip_kernel_tc",
        re.compile(
            r"\bUnset\s+(?:Guard|Positivity|Universe)\s+Checking\b|\bbypass_check\b|\bSet\s+Type\s+In\s+Type\b|-type-in-type"
        ),
    ),
    (
        "notation_declared",
        "coq",
        "reject_notations",
        re.compile(r"(?<![\w.])(?:Reserved\s+)?(?:Notation|Infix|Tactic\s+Notation)\b"),
    ),
    (
        "axiom_declared",
        "coq",
        "reject_axiom_decls",
        re.compile(r"(?<![\w.])(?:Axiom|Axioms|Parameter|Parameters|Conjecture|Hypothesis|Hypotheses)\b"),
    ),
    (
        "session_command",
        "coq",
        "reject_session_commands",
        re.compile(
            r"(?<![\w.])(?:Load|Reset|Back|BackTo|Restart|Quit|Drop|Cd|Redirect|Declare\s+ML\s+Module"
            r"|Add\s+(?:Rec\s+)?LoadPath|Add\s+ML\s+Path|Extraction|Separate\s+Extraction|Recursive\s+Extraction"
            r"|Time\s+Load)\b"
        ),
    ),
]

_COQ_REQUIRE = re.compile(r"(?<![\w.])(?:From\s+([\w.]+)\s+)?Require\s+(?:Import\s+|Export\s+)?((?:[\w.]+\s*)+)\.")


def static_rejections(problem: FormalProblem, source: str, policy: AuditPolicy) -> list[str]:
    """Rejections decided from the text alone (before or without running a checker).
    Each returned string is one reason; a source can have several."""
    backend = problem.backend
    code = strip_comments(source, backend)
    reasons: list[str] = []
    for reason, rule_backend, flag, pattern in _TEXT_RULES:
        if rule_backend == backend and getattr(policy, flag) and pattern.search(code) and reason not in reasons:
            reasons.append(reason)
    if policy.require_exact_statement:
        core = statement_core(problem.statement, backend)
        norm = normalize_ws(code)
        count = norm.count(core)
        decls = len(name_decl_pattern(problem.name, backend).findall(code))
        if count == 0:
            reasons.append("statement_mismatch" if decls else "statement_missing")
        elif count > 1 or decls > 1:
            reasons.append("theorem_redefined")
    if policy.reject_redefinitions:
        reasons.extend(_redefinitions(problem, code))
    if backend == "coq" and policy.allowed_requires is not None:
        header_reqs = _coq_requires(problem.header)
        for mod in _coq_requires(code):
            if mod not in header_reqs and mod not in policy.allowed_requires:
                reasons.append("unexpected_require")
                break
    return reasons


def _coq_requires(text: str) -> set[str]:
    mods: set[str] = set()
    for m in _COQ_REQUIRE.finditer(strip_comments(text, "coq")):
        prefix = m.group(1)
        for name in m.group(2).split():
            mods.add(f"{prefix}.{name}" if prefix else name)
    return mods


_IDENT = re.compile(r"[A-Za-z_][\w'.]*")
_STATEMENT_KEYWORDS = {"theorem", "lemma", "Theorem", "Lemma", "forall", "fun", "exists", "by", "Type", "Prop", "Set"}


def _redefinitions(problem: FormalProblem, code: str) -> list[str]:
    """A name the statement mentions (other than binders it introduces) declared again in
    the proof source changes what the statement means: reject it."""
    backend = problem.backend
    names = {
        n
        for n in _IDENT.findall(statement_core(problem.statement, backend))
        if n not in _STATEMENT_KEYWORDS and n != problem.name
    }
    if backend == "lean":
        kw = r"(?:def|abbrev|instance|notation|structure|inductive|class|theorem|lemma|axiom|opaque)"
    else:
        kw = (
            r"(?:Definition|Fixpoint|Let|Inductive|Record|Structure|Class|Instance|Theorem|Lemma"
            r"|Axiom|Parameter|Notation)"
        )
    for decl in re.finditer(rf"(?<![\w.]){kw}\s+([A-Za-z_][\w'.]*)", code):
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
