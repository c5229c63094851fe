"""Coq's text rules for the audit: comments, the statement core, declarations, holes and
the rejection patterns (docs/formal.md, "Rejection reasons"). Patterns run on the source
with comments blanked out. A leaf module: the checker and the backend both read it."""

from __future__ import annotations

import re

from proofflow.verifiers.coq import lex as coq_lex
from proofflow.verifiers.formal.backend import TextRule
from proofflow.verifiers.formal.text import declaration_of, normalize_ws

HOLES = re.compile(r"(?<![\w.'])(admit|Admitted|Abort|give_up)(?![\w'])")
THEOREM_NAME = re.compile(r"^\s*(?:Theorem|Lemma|Example|Corollary|Proposition|Fact|Remark)\s+([^\s(:]+)")
_DECLARATION_KEYWORDS = (
    r"(?:Theorem|Lemma|Fact|Remark|Corollary|Proposition|Property|Definition|Fixpoint"
    r"|CoFixpoint|Example|Let|Axiom|Parameter|Conjecture|Hypothesis|Variable|Inductive"
    r"|Record|Structure|Class|Instance|Program\s+\w+)"
)
REDEFINITION = re.compile(
    r"(?<![\w.])(?:Definition|Fixpoint|Let|Inductive|Record|Structure|Class|Instance|Theorem|Lemma"
    r"|Axiom|Parameter|Notation)\s+([A-Za-z_][\w'.]*)"
)
# Where a model's code block starts declaring things (the proof text keeps it from there).
DECLARATIONS_START = re.compile(
    r"(?m)^\s*(?:Theorem|Lemma|Example|Corollary|Proposition|Fact|Remark|Definition|Fixpoint"
    r"|Axiom|Parameter|Hypothesis|Variable|Inductive|Require|From|Section|Module)\b"
)
# Commands that would break a warm session's isolation or protocol; the checker refuses
# them before Coq sees them.
SESSION_COMMAND = re.compile(
    r"(?<![\w.])(?:Load|Reset|Back|BackTo|Restart|Quit|Drop|Cd|Redirect|Declare\s+ML\s+Module"
    r"|Add\s+(?:Rec\s+)?LoadPath|Add\s+ML\s+Path|Extraction|Separate\s+Extraction|Recursive\s+Extraction"
    r"|Time\s+Load)\b"
)
TEXT_RULES: tuple[TextRule, ...] = (
    TextRule(
        "kernel_check_bypassed",
        "reject_skip_kernel_tc",
        re.compile(
            r"\bUnset\s+(?:Guard|Positivity|Universe)\s+Checking\b|\bbypass_check\b|\bSet\s+Type\s+In\s+Type\b|-type-in-type"
        ),
    ),
    TextRule(
        "notation_declared",
        "reject_notations",
        re.compile(r"(?<![\w.])(?:Reserved\s+)?(?:Notation|Infix|Tactic\s+Notation)\b"),
    ),
    TextRule(
        "axiom_declared",
        "reject_axiom_decls",
        re.compile(r"(?<![\w.])(?:Axiom|Axioms|Parameter|Parameters|Conjecture|Hypothesis|Hypotheses)\b"),
    ),
    TextRule("session_command", "reject_session_commands", SESSION_COMMAND),
)
_REQUIRE = re.compile(r"(?<![\w.])(?:From\s+([\w.]+)\s+)?Require\s+(?:Import\s+|Export\s+)?((?:[\w.]+\s*)+)\.")


def strip_comments(source: str) -> str:
    """Comments replaced by blanks (newlines kept) so matches are never inside one."""
    try:
        return coq_lex.strip_comments(source)
    except coq_lex.CoqLexError:
        return source  # the checker reports the lexing error itself


def statement_core(statement: str) -> str:
    """A Coq statement must appear as given (whitespace normalised)."""
    return normalize_ws(statement)


def declaration(name: str) -> re.Pattern[str]:
    return declaration_of(_DECLARATION_KEYWORDS, name)


def requires(text: str) -> set[str]:
    """The modules `text` Requires (`From X Require Y` → `X.Y`)."""
    mods: set[str] = set()
    for m in _REQUIRE.finditer(strip_comments(text)):
        prefix = m.group(1)
        for name in m.group(2).split():
            mods.add(f"{prefix}.{name}" if prefix else name)
    return mods


def session_commands(source: str) -> bool:
    """Does the source (comments aside) hold a command that breaks a warm session?"""
    return SESSION_COMMAND.search(strip_comments(source)) is not None


class CoqSyntax:
    """Coq's hole syntax (formal.holes.HoleSyntax), for the checker: it finds holes
    without importing the backend (which imports the checker)."""

    hole_pattern = HOLES

    def strip_comments(self, source: str) -> str:
        return strip_comments(source)


SYNTAX = CoqSyntax()
