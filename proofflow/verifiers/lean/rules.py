"""Lean's text rules for the audit: comments, the statement core, declarations, holes and
the rejection patterns (docs/formal.md, "Rejection reasons"). Patterns run on the source
with comments blanked out. The checker program decides most of these inside Lean too;
the text rules name the trick plainly and cover the REPL and Kimina checkers."""

from __future__ import annotations

import re

from proofflow.verifiers.formal.backend import TextRule
from proofflow.verifiers.formal.text import blank, declaration_of, normalize_ws

LEAN_STANDARD_AXIOMS = frozenset({"propext", "Classical.choice", "Quot.sound"})
HOLES = re.compile(r"(?<![\w.'])(sorry|admit)(?![\w'?!])")
THEOREM_NAME = re.compile(r"^\s*(?:theorem|lemma)\s+([^\s(:{\[]+)")
_DECLARATION_KEYWORDS = r"(?:theorem|lemma|def|abbrev|instance|example|axiom|opaque|structure|inductive|class)"
REDEFINITION = re.compile(
    r"(?<![\w.])(?:def|abbrev|instance|notation|structure|inductive|class|theorem|lemma|axiom|opaque)"
    r"\s+([A-Za-z_][\w'.]*)"
)
# Where a model's code block starts declaring things (the proof text keeps it from there).
DECLARATIONS_START = re.compile(
    r"(?m)^\s*(?:theorem|lemma|def|abbrev|example|axiom|variable|open|namespace|section"
    r"|instance|noncomputable|private|@\[)"
)
TEXT_RULES: tuple[TextRule, ...] = (
    TextRule(
        "native_decide",
        "reject_native_decide",
        re.compile(r"\bnative_decide\b|\bdecide\s*\+\s*native|Lean\.ofReduceBool"),
    ),
    TextRule("implemented_by", "reject_implemented_by", re.compile(r"\bimplemented_by\b")),
    TextRule("extern", "reject_implemented_by", re.compile(r"@\[\s*extern\b|\bextern\b\s*\"")),
    TextRule("skip_kernel_tc", "reject_skip_kernel_tc", re.compile(r"debug\.skipKernelTC")),
    TextRule("search_tactic_left", "reject_search_tactics", re.compile(r"\b(?:exact|apply|rw|simp|aesop)\?")),
    TextRule(
        "notation_declared",
        "reject_notations",
        re.compile(
            r"(?m)^\s*(?:@\[[^\]]*\]\s*)?(?:local\s+|scoped\s+)?(?:notation|infixl?|infixr|prefix|postfix|macro|macro_rules|syntax|elab|elab_rules)\b"
        ),
    ),
    # A `variable` is bound into the theorem: same text, different statement. The checker
    # program and the REPL also compare elaborated types; the Kimina checker relies on this rule.
    TextRule("variable_declared", "reject_redefinitions", re.compile(r"(?m)^\s*variable\b")),
    TextRule(
        "axiom_declared",
        "reject_axiom_decls",
        re.compile(r"(?m)^\s*(?:private\s+|protected\s+)?(?:axiom|unsafe|opaque)\b"),
    ),
)
_BLOCK_COMMENT = re.compile(r"/-.*?-/", re.S)
_LINE_COMMENT = re.compile(r"--[^\n]*")


def strip_comments(source: str) -> str:
    """Comments replaced by blanks (newlines kept) so matches are never inside one."""
    # Lean doc/block comments nest rarely in proofs; non-greedy is enough for the audit,
    # and an unbalanced one makes the checker fail anyway.
    return _LINE_COMMENT.sub(blank, _BLOCK_COMMENT.sub(blank, source))


def statement_core(statement: str) -> str:
    """The statement without the trailing `:= by` / `:= by sorry` (a proof may use `:=`
    term mode)."""
    return re.sub(r"\s*:=\s*(by)?\s*(sorry)?\s*$", "", normalize_ws(statement))


def declaration(name: str) -> re.Pattern[str]:
    return declaration_of(_DECLARATION_KEYWORDS, name)
