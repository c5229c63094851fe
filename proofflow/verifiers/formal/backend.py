"""`FormalBackend`: everything about one proof language (Coq, Lean, ...) that the
backend-neutral code needs, in one object.

The neutral code (the audit, the verdict cache, the hole helpers, the proving stages)
never asks "is this Coq?": it asks the problem's backend. Each backend lives in its own
folder (verifiers/coq/backend.py, verifiers/lean/backend.py) and is named in the one
registry (verifiers/registry.py). Adding a backend is that folder plus one registry line
(docs/architecture.md, "Add a formal backend").

This module imports no backend: a backend imports it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from proofflow.verifiers.formal.types import FormalChecker, FormalProblem, Hole, Message

if TYPE_CHECKING:
    from proofflow.verifiers.formal.policy import AuditPolicy


@dataclass(frozen=True)
class TextRule:
    """One audit rule decided from the text alone: `pattern` found in the comment-free
    source records `reason`, unless the policy switch named `flag` is off."""

    reason: str  # one of policy.REJECTION_REASONS
    flag: str  # an AuditPolicy field, e.g. "reject_native_decide"
    pattern: re.Pattern[str]


@dataclass(frozen=True)
class CheckerOptions:
    """How to run a backend's checker, as plain values (the caller maps its settings to
    these; verifiers/ never reads the app's configuration). A backend reads the fields it
    has a use for and ignores the others."""

    timeout_s: float = 20.0  # per check
    workers: int = 1  # checker processes
    variant: str = ""  # a backend's checker kind (Lean: program | repl | kimina); "": its default
    memory_mb: int | None = None  # per checker process; None: the backend's default
    recycle_after: int | None = None  # checks per checker process before a fresh one; None: the backend's default
    project_dir: str = "."  # a project the checker runs in (Lean: a lake project)
    command: tuple[str, ...] = ()  # how to run the checker (): the backend finds it
    repl_command: tuple[str, ...] = ()  # Lean REPL variant
    url: str = ""  # a checker server (Lean: Kimina)
    api_key: str | None = None
    install: bool = True  # may install a missing toolchain (the unofficial wasm Lean)


class FormalBackend(Protocol):
    """What a proof language provides. Text in, text out: no process is started except by
    `make_checker`."""

    # The language's name: FormalProblem.backend, CheckResult.backend, the raw verdict's
    # verifier name. Two registry entries may share it (Lean's Kimina variant).
    name: str
    # Prompt templates are `<stage>_<prompt_variant>.txt` (tasks/prompts/prove_coq.txt).
    prompt_variant: str
    # The axioms a proof may depend on by default (AuditPolicy.for_backend).
    allowed_axioms: frozenset[str]
    # A hole on comment-free text; group 1 is its kind (sorry, admit, Admitted, ...).
    hole_pattern: re.Pattern[str]
    # The text-level audit rules of this language.
    text_rules: Sequence[TextRule]
    # How a statement starts, for error messages: "`theorem NAME ...`".
    statement_form: str
    # What to do when the configured environment cannot elaborate a problem's header (the
    # end of the one line a prove run stops with before any model call).
    environment_help: str
    # Whether this language has a proof-state program for tactic-level search.
    proof_states: bool

    # -- text ------------------------------------------------------------------------
    def strip_comments(self, source: str) -> str:
        """Comments replaced by blanks (newlines kept), so matches are never inside one."""
        ...

    def statement_core(self, statement: str) -> str:
        """The part of a statement that must appear verbatim in a proof (normalized
        whitespace): Lean without its trailing `:= by`, Coq as given."""
        ...

    def declaration(self, name: str) -> re.Pattern[str]:
        """A declaration of `name` (theorem, def, axiom, ...)."""
        ...

    def redefinition(self) -> re.Pattern[str]:
        """Any declaration that can redefine a name; group 1 is the declared name."""
        ...

    def extra_rejections(self, problem: FormalProblem, code: str, policy: AuditPolicy) -> list[str]:
        """Text rules that need more than one pattern (Coq: a Require outside the allow
        list); `code` is comment-free."""
        ...

    # -- problem files ---------------------------------------------------------------
    def theorem_name(self, statement: str) -> str | None:
        """The theorem's name, or None when the statement does not start like one."""
        ...

    def statement_error(self, statement: str) -> str | None:
        """Why a statement cannot be used as given (Coq: it must end with '.'), or None."""
        ...

    # -- proof text (from a model's completion) --------------------------------------
    def declarations_start(self, text: str) -> int | None:
        """Where the first declaration (or import / open) of a code block starts, or None."""
        ...

    def assemble(self, statement: str, body: str) -> str:
        """The statement followed by a proof body that does not repeat it."""
        ...

    def hole_text(self, text: str) -> str:
        """A hole's proof from a completion's code: without the wrappers a hole inside a
        proof must not repeat (Coq `Proof.` / `Qed.`, Lean `by`); an empty text is a hole."""
        ...

    def tactic_text(self, tactic: str) -> str:
        """An automation tactic as a hole's fill (Coq: `lia` → `lia.`)."""
        ...

    # -- holes -----------------------------------------------------------------------
    def fill_hole(self, source: str, hole: Hole, text: str) -> str:
        """`source` with `hole` replaced by `text` (already stripped)."""
        ...

    def mask_failing_lines(self, source: str, messages: list[Message]) -> str:
        """DSP+ masking: the steps carrying an error become holes."""
        ...

    def close_open_proof(self, source: str) -> str:
        """A proof that ends with goals left gets a hole for them (or `source` as is)."""
        ...

    def whole_proof_hole(self, statement: str) -> str:
        """The statement with its whole proof one hole."""
        ...

    def ensure_closed(self, source: str) -> str:
        """A masked proof whose end was swallowed is closed again (or `source` as is)."""
        ...

    # -- environment and checker -----------------------------------------------------
    def automation(self, header: str) -> list[str]:
        """The automation tactics tried on a hole by default, for the problem's header
        (Lean: more when it imports Mathlib)."""
        ...

    def make_checker(self, options: CheckerOptions) -> FormalChecker:
        """The checker (its processes start lazily or at once, as the backend decides).
        RuntimeError with one line saying why when it cannot run here."""
        ...
