"""The backend-neutral formal-checker interface, the audit, the verdict cache and the
hole helpers (mask / split / fill) that the draft → sketch → prove flows build on.

A backend (Coq here, Lean in production) only *runs* the checker and reports what it saw
(`CheckResult`). Whether that amounts to a proof is decided once, here, by `audit`: a
checker saying "no errors" is necessary but not sufficient — the statement must be the
problem's, there must be no hole, no extra axiom and none of the known tricks (issue #4).
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

from proofflow.verifiers import _coq_lex
from proofflow.verifiers.verdict import Outcome, Verdict

Backend = Literal["lean", "coq"]
# "crash" is the checker itself failing (process died, protocol broken): ERROR, never FAIL.
Status = Literal["complete", "incomplete", "error", "timeout", "rejected", "crash"]


@dataclass(frozen=True)
class FormalProblem:
    name: str                 # the theorem's name, e.g. "mathd_algebra_10"
    header: str               # imports / opens / options, checked before the source
    statement: str            # exactly as given: Lean `theorem foo ... := by`, Coq `Theorem foo : ... .`
    backend: Backend = "lean"
    informal: str = ""
    split: str | None = None
    source: str = ""          # file it came from
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Message:
    severity: str             # "error" | "warning" | "info"
    text: str
    line: int | None = None   # 1-based, relative to the proof source (not the header)
    column: int | None = None  # 0-based, characters
    end_line: int | None = None
    end_column: int | None = None


@dataclass(frozen=True)
class Hole:
    line: int
    column: int
    goal: str = ""
    kind: str = "sorry"       # sorry | admit | Admitted | Abort
    start: int = 0            # character offsets of the hole token in the source
    end: int = 0


@dataclass
class CheckResult:
    status: Status
    backend: str
    version: str
    messages: list[Message] = field(default_factory=list)
    holes: list[Hole] = field(default_factory=list)
    axioms: list[str] | None = None   # None: not determined (checker stopped before)
    rejections: list[str] = field(default_factory=list)
    duration_s: float = 0.0
    detail: str = ""                   # e.g. why the checker crashed

    @property
    def errors(self) -> list[Message]:
        return [m for m in self.messages if m.severity == "error"]


@runtime_checkable
class FormalChecker(Protocol):
    name: str      # "coq" / "lean"
    version: str   # checker version string, part of the cache key

    def check(self, problem: FormalProblem, proof_source: str) -> CheckResult: ...


# --------------------------------------------------------------------------- text helpers

_LEAN_BLOCK_COMMENT = re.compile(r"/-.*?-/", re.S)
_LEAN_LINE_COMMENT = re.compile(r"--[^\n]*")


def strip_comments(source: str, backend: Backend) -> str:
    """Comments replaced by blanks (newlines kept) so matches are never inside one."""
    if backend == "coq":
        try:
            return _coq_lex.strip_comments(source)
        except _coq_lex.CoqLexError:
            return source  # the checker reports the lexing error itself
    blank = lambda m: re.sub(r"[^\n]", " ", m.group(0))  # noqa: E731
    # Lean doc/block comments nest rarely in proofs; non-greedy is enough for the audit,
    # and an unbalanced one makes the checker fail anyway.
    return _LEAN_LINE_COMMENT.sub(blank, _LEAN_BLOCK_COMMENT.sub(blank, source))


def normalize_ws(text: str) -> str:
    return " ".join(text.split())


def statement_core(statement: str, backend: Backend) -> str:
    """The part of a statement that must appear verbatim: Lean without the trailing
    `:= by` / `:= by sorry` (a proof may use `:=` term mode), Coq as given."""
    s = normalize_ws(statement)
    if backend == "lean":
        s = re.sub(r"\s*:=\s*(by)?\s*(sorry)?\s*$", "", s)
    return s


def _name_decl_pattern(name: str, backend: Backend) -> re.Pattern[str]:
    if backend == "lean":
        kw = r"(?:theorem|lemma|def|abbrev|instance|example|axiom|opaque|structure|inductive|class)"
    else:
        kw = (r"(?:Theorem|Lemma|Fact|Remark|Corollary|Proposition|Property|Definition|Fixpoint"
              r"|CoFixpoint|Example|Let|Axiom|Parameter|Conjecture|Hypothesis|Variable|Inductive"
              r"|Record|Structure|Class|Instance|Program\s+\w+)")
    return re.compile(rf"(?<![\w.']){kw}\s+{re.escape(name)}(?![\w'])")


# --------------------------------------------------------------------------- policy / audit

LEAN_STANDARD_AXIOMS = frozenset({"propext", "Classical.choice", "Quot.sound"})


@dataclass(frozen=True)
class AuditPolicy:
    """What the audit enforces. Every check can be switched off for experiments; the
    defaults are the strict ones."""
    allowed_axioms: frozenset[str] = LEAN_STANDARD_AXIOMS   # Coq: empty = "Closed under the global context"
    require_exact_statement: bool = True
    reject_native_decide: bool = True
    reject_implemented_by: bool = True      # also @[extern]
    reject_skip_kernel_tc: bool = True      # Lean debug.skipKernelTC / Coq guard/positivity/universe bypass
    reject_redefinitions: bool = True       # the theorem's name or a name it uses, redefined
    reject_notations: bool = True           # new notation / macro / syntax in the proof
    reject_search_tactics: bool = True      # exact? / apply? / rw? left in
    reject_axiom_decls: bool = True         # Axiom / Parameter / axiom in the proof source
    reject_session_commands: bool = True    # Coq: Load, Reset, Back, Quit, Cd, Redirect, ...
    # Coq: modules a proof may Require beyond its header; None = any (Print Assumptions
    # still catches the axioms an extra library brings in).
    allowed_requires: frozenset[str] | None = None

    @classmethod
    def for_backend(cls, backend: Backend, **overrides: Any) -> AuditPolicy:
        base = {"allowed_axioms": LEAN_STANDARD_AXIOMS if backend == "lean" else frozenset()}
        base.update(overrides)
        return cls(**base)


# Each rule: (reason, backend, policy flag, pattern). Patterns run on comment-free text.
_TEXT_RULES: list[tuple[str, Backend, str, re.Pattern[str]]] = [
    ("native_decide", "lean", "reject_native_decide", re.compile(r"\bnative_decide\b|\bdecide\s*\+\s*native|Lean\.ofReduceBool")),
    ("implemented_by", "lean", "reject_implemented_by", re.compile(r"\bimplemented_by\b")),
    ("extern", "lean", "reject_implemented_by", re.compile(r"@\[\s*extern\b|\bextern\b\s*\"")),
    ("skip_kernel_tc", "lean", "reject_skip_kernel_tc", re.compile(r"debug\.skipKernelTC")),
    ("search_tactic_left", "lean", "reject_search_tactics", re.compile(r"\b(?:exact|apply|rw|simp|aesop)\?")),
    ("notation_declared", "lean", "reject_notations", re.compile(r"(?m)^\s*(?:@\[[^\]]*\]\s*)?(?:local\s+|scoped\s+)?(?:notation|infixl?|infixr|prefix|postfix|macro|macro_rules|syntax|elab|elab_rules)\b")),
    # A `variable` is bound into the theorem: same text, different statement. The REPL
    # backend also compares elaborated types; the Kimina backend relies on this rule.
    ("variable_declared", "lean", "reject_redefinitions", re.compile(r"(?m)^\s*variable\b")),
    ("axiom_declared", "lean", "reject_axiom_decls", re.compile(r"(?m)^\s*(?:private\s+|protected\s+)?(?:axiom|unsafe|opaque)\b")),
    ("kernel_check_bypassed", "coq", "reject_skip_kernel_tc", re.compile(r"\bUnset\s+(?:Guard|Positivity|Universe)\s+Checking\b|\bbypass_check\b|\bSet\s+Type\s+In\s+Type\b|-type-in-type")),
    ("notation_declared", "coq", "reject_notations", re.compile(r"(?<![\w.])(?:Reserved\s+)?(?:Notation|Infix|Tactic\s+Notation)\b")),
    ("axiom_declared", "coq", "reject_axiom_decls", re.compile(r"(?<![\w.])(?:Axiom|Axioms|Parameter|Parameters|Conjecture|Hypothesis|Hypotheses)\b")),
    ("session_command", "coq", "reject_session_commands", re.compile(
        r"(?<![\w.])(?:Load|Reset|Back|BackTo|Restart|Quit|Drop|Cd|Redirect|Declare\s+ML\s+Module"
        r"|Add\s+(?:Rec\s+)?LoadPath|Add\s+ML\s+Path|Extraction|Separate\s+Extraction|Recursive\s+Extraction"
        r"|Time\s+Load)\b")),
]

_COQ_REQUIRE = re.compile(r"(?<![\w.])(?:From\s+([\w.]+)\s+)?Require\s+(?:Import\s+|Export\s+)?((?:[\w.]+\s*)+)\.")
_COQ_HOLES = re.compile(r"(?<![\w.'])(admit|Admitted|Abort|give_up)(?![\w'])")
_LEAN_HOLES = re.compile(r"(?<![\w.'])(sorry|admit)(?![\w'?!])")


def static_rejections(problem: FormalProblem, source: str, policy: AuditPolicy) -> list[str]:
    """Rejections decided from the text alone (before or without running a checker).
    Each returned string is one reason; a source can have several."""
    backend = problem.backend
    code = strip_comments(source, backend)
    reasons: list[str] = []
    for reason, rule_backend, flag, pattern in _TEXT_RULES:
        if rule_backend == backend and getattr(policy, flag) and pattern.search(code):
            if reason not in reasons:
                reasons.append(reason)
    if policy.require_exact_statement:
        core = statement_core(problem.statement, backend)
        norm = normalize_ws(code)
        count = norm.count(core)
        decls = len(_name_decl_pattern(problem.name, backend).findall(code))
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
    names = {n for n in _IDENT.findall(statement_core(problem.statement, backend))
             if n not in _STATEMENT_KEYWORDS and n != problem.name}
    if backend == "lean":
        kw = r"(?:def|abbrev|instance|notation|structure|inductive|class|theorem|lemma|axiom|opaque)"
    else:
        kw = r"(?:Definition|Fixpoint|Let|Inductive|Record|Structure|Class|Instance|Theorem|Lemma|Axiom|Parameter|Notation)"
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
    "statement_type_mismatch": "the theorem's elaborated type (Coq Printing All, Lean REPL pp.all) differs from the statement elaborated on the header alone (Section variables, scope changes)",
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
}


def audit(problem: FormalProblem, source: str, result: CheckResult,
          policy: AuditPolicy | None = None) -> Verdict:
    """Turn a backend's CheckResult into the one Verdict that counts.

    PASS only when the checker finished with no error, there is no hole, the statement is
    the problem's (once), the axioms are within the allowed set and no rejection rule
    fires. The first reason found is `reason`; all of them are in details["reasons"].
    """
    policy = policy or AuditPolicy.for_backend(problem.backend)
    verifier = f"{result.backend}"
    details: dict[str, Any] = {
        "status": result.status,
        "messages": [m.__dict__ for m in result.messages],
        "holes": [{"line": h.line, "column": h.column, "goal": h.goal, "kind": h.kind} for h in result.holes],
        "axioms": result.axioms,
    }

    def verdict(outcome: Outcome, reasons: list[str], feedback: str = "") -> Verdict:
        details["reasons"] = reasons
        return Verdict(verifier=verifier, verifier_version=result.version, outcome=outcome,
                       reason=reasons[0] if reasons else None, feedback=feedback,
                       details=details, duration_s=result.duration_s)

    if result.status == "timeout":
        return verdict(Outcome.TIMEOUT, ["timeout"], "the check ran out of time")
    if result.status == "crash":
        return verdict(Outcome.ERROR, ["checker_crash"], result.detail)

    # Text-level reasons first (they say most plainly what is wrong), then the checker's.
    reasons: list[str] = list(dict.fromkeys(static_rejections(problem, source, policy) + result.rejections))
    if result.errors:
        reasons.insert(0, "compile_error")
    code = strip_comments(source, problem.backend)
    holes_in_text = (_COQ_HOLES if problem.backend == "coq" else _LEAN_HOLES).search(code)
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
        reasons.append("compile_error" if result.status == "error" else "hole" if result.status == "incomplete" else "rejected")
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


# --------------------------------------------------------------------------- verdict cache

def source_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class CacheKey:
    checker: str   # backend + version, e.g. "coq 8.16.1"
    header: str    # hash of the header
    source: str    # hash of statement + proof source


class VerdictCache:
    """(backend+version, header, source) → CheckResult, so the same proof is never checked
    twice. In memory; `persist(key, result)` (e.g. a DuckDB writer, owned by storage/) is
    called on every new entry and `load(key)` is asked on a miss, so a rerun hits."""

    def __init__(self, persist: Callable[[CacheKey, CheckResult], None] | None = None,
                 load: Callable[[CacheKey], CheckResult | None] | None = None):
        self._data: dict[CacheKey, CheckResult] = {}
        self._lock = threading.Lock()
        self._persist, self._load = persist, load
        self.hits = 0
        self.misses = 0

    @staticmethod
    def key(checker: FormalChecker, problem: FormalProblem, source: str) -> CacheKey:
        # The statement is part of the key: the same text is a different check (audit)
        # against a different problem.
        return CacheKey(f"{checker.name} {checker.version}", source_hash(problem.header),
                        source_hash(problem.name + "\x1f" + problem.statement + "\x1f" + source))

    def get(self, key: CacheKey) -> CheckResult | None:
        with self._lock:
            found = self._data.get(key)
        if found is None and self._load is not None:
            found = self._load(key)
            if found is not None:
                with self._lock:
                    self._data[key] = found
        with self._lock:
            if found is None:
                self.misses += 1
            else:
                self.hits += 1
        return found

    def put(self, key: CacheKey, result: CheckResult) -> None:
        # Timeouts and crashes are not facts about the proof: do not cache them, so a
        # later run with more time (or a healthy checker) tries again.
        if result.status in ("timeout", "crash"):
            return
        with self._lock:
            self._data[key] = result
        if self._persist is not None:
            self._persist(key, result)

    @property
    def hit_rate(self) -> float:
        total = self.hits + self.misses
        return self.hits / total if total else 0.0

    def __len__(self) -> int:
        return len(self._data)


def check_cached(checker: FormalChecker, problem: FormalProblem, source: str,
                 cache: VerdictCache | None, policy: AuditPolicy | None = None) -> tuple[CheckResult, Verdict, bool]:
    """Check (or reuse) and audit. Returns (result, verdict, was_cached)."""
    key = VerdictCache.key(checker, problem, source) if cache is not None else None
    result = cache.get(key) if cache is not None and key is not None else None
    cached = result is not None
    if result is None:
        result = checker.check(problem, source)
        if cache is not None and key is not None:
            cache.put(key, result)
    return result, audit(problem, source, result, policy), cached


# --------------------------------------------------------------------------- holes

def split_holes(source: str, backend: Backend) -> list[Hole]:
    """The holes of a source in order: Lean `sorry`/`admit`; Coq `admit`, `Admitted.`,
    `Abort.`, `give_up`. Offsets index into `source`; comments are ignored."""
    code = strip_comments(source, backend)
    pattern = _COQ_HOLES if backend == "coq" else _LEAN_HOLES
    holes = []
    for m in pattern.finditer(code):
        line, col = _coq_lex.line_col(source, m.start())
        holes.append(Hole(line=line, column=col, kind=m.group(1), start=m.start(), end=m.end()))
    return holes


def fill_hole(source: str, hole_index: int, proof_text: str, backend: Backend) -> str:
    """Replace hole number `hole_index` (as split_holes numbers them) by proof_text.

    Lean: the tactic text replaces `sorry`; extra lines are indented to the hole's column
    so they stay in the same tactic block. Coq: a hole that is a whole sentence (`admit.`)
    takes any tactic sentences; one inside a tactic expression (`by admit`, `; admit`)
    takes one tactic, so several sentences are chained with `;` in parentheses;
    `Admitted.` becomes the text followed by `Qed.`.
    """
    holes = split_holes(source, backend)
    if not 0 <= hole_index < len(holes):
        raise IndexError(f"hole {hole_index} out of range ({len(holes)} holes)")
    h = holes[hole_index]
    text = proof_text.strip()
    if backend == "lean":
        pad = " " * h.column
        body = text.split("\n")
        filled = body[0] + "".join("\n" + pad + ln.strip() if ln.strip() else "\n" for ln in body[1:])
        return source[:h.start] + filled + source[h.end:]
    if h.kind in ("Admitted", "Abort"):
        end = h.end + 1 if source[h.end:h.end + 1] == "." else h.end
        tail = text if text.endswith(".") else text + "."
        return source[:h.start] + tail + "\nQed." + source[end:]
    before = source[:h.start].rstrip()
    whole_sentence = (before == "" or before[-1] in ".{}-+*:" ) and source[h.end:h.end + 1] == "."
    if whole_sentence:
        tail = text if text.endswith(".") else text + "."
        return source[:h.start] + tail + source[h.end + 1:]
    parts = [s.text.rstrip(".").strip() for s in _coq_lex.split_sentences(text if text.endswith(".") else text + ".")[0]]
    expr = parts[0] if len(parts) == 1 else "(" + "; ".join(parts) + ")"
    return source[:h.start] + expr + source[h.end:]


_LEAN_HAVE = re.compile(r"^(?P<indent>\s*)(?:have|obtain|suffices)\b.*?:=\s*by\b(?P<rest>.*)$")


def mask_failing_lines(source: str, messages: list[Message], backend: Backend) -> str:
    """DSP+ masking: every step carrying an error becomes a hole instead of resampling.

    Lean: an error inside `have hN : T := by <tactics>` (the `have` line or its indented
    block) turns the step into `have hN : T := by sorry`; an error on another tactic line
    turns that line into `sorry`. Coq: an error in `assert (hN : T) by tac.` (or ssreflect
    `have ... by tac.`) gives `... by admit.`; an error in another tactic sentence turns
    the sentence into `admit.`. Errors in the header, the statement or on `Qed` are left
    alone (masking cannot help there). Run again after re-checking: Coq stops at the
    first error, so one round masks one step.
    """
    error_lines = sorted({m.line for m in messages if m.severity == "error" and m.line and m.line > 0})
    if not error_lines:
        return source
    if backend == "lean":
        return _mask_lean(source, error_lines)
    return _mask_coq(source, messages)


def _mask_lean(source: str, error_lines: list[int]) -> str:
    lines = source.split("\n")
    masked: set[int] = set()
    for err in error_lines:
        idx = err - 1
        if idx >= len(lines) or idx in masked:
            continue
        # Find the innermost enclosing `have ... := by` whose block contains idx.
        target = None
        for j in range(idx, -1, -1):
            m = _LEAN_HAVE.match(lines[j])
            if not m:
                continue
            indent = len(m.group("indent"))
            end = j + 1
            while end < len(lines) and (not lines[end].strip() or len(lines[end]) - len(lines[end].lstrip()) > indent):
                end += 1
            if j <= idx < end:
                target = (j, end, m)
                break
        if target:
            j, end, m = target
            head = lines[j][: m.start("rest")]
            lines[j] = head + " sorry"
            for k in range(j + 1, end):
                if lines[k].strip():
                    lines[k] = None  # type: ignore[call-overload]
                    masked.add(k)
            masked.add(j)
        else:
            line = lines[idx]
            if re.match(r"\s*(theorem|lemma|example|import|open|set_option)\b", line):
                continue
            lines[idx] = line[: len(line) - len(line.lstrip())] + "sorry"
            masked.add(idx)
    return "\n".join(x for x in lines if x is not None)


def _mask_coq(source: str, messages: list[Message]) -> str:
    try:
        sentences, _ = _coq_lex.split_sentences(source)
    except _coq_lex.CoqLexError:
        return source
    edits: list[tuple[int, int, str]] = []
    for msg in messages:
        if msg.severity != "error" or not msg.line or msg.line < 1:
            continue
        off = _coq_lex.offset_of(source, msg.line, msg.column or 0)
        sent = next((s for s in sentences if s.start <= off < s.end), None)
        if sent is None or any(e[0] == sent.start for e in edits):
            continue
        code = sent.code
        if re.match(r"\s*(Theorem|Lemma|Example|Corollary|Proposition|Fact|Remark|Qed|Defined|Proof|Require|From|Open|Definition|Fixpoint)\b", code):
            continue
        by = re.search(r"^\s*(?:assert|have|enough|cut|replace)\b.*?\bby\b", code, re.S)
        if by:
            edits.append((sent.start, sent.end, sent.text[: by.end()] + " admit."))
        else:
            edits.append((sent.start, sent.end, "admit."))
    for start, end, text in sorted(edits, reverse=True):
        source = source[:start] + text + source[end:]
    return source
