"""Text helpers shared by the audit and the hole editing: comments blanked out, whitespace
normalised, the statement's core, declaration and hole patterns."""

from __future__ import annotations

import re

from proofflow.verifiers.coq import lex as coq_lex
from proofflow.verifiers.formal.types import Backend

_LEAN_BLOCK_COMMENT = re.compile(r"/-.*?-/", re.S)
_LEAN_LINE_COMMENT = re.compile(r"--[^\n]*")


def strip_comments(source: str, backend: Backend) -> str:
    """Comments replaced by blanks (newlines kept) so matches are never inside one."""
    if backend == "coq":
        try:
            return coq_lex.strip_comments(source)
        except coq_lex.CoqLexError:
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


def name_decl_pattern(name: str, backend: Backend) -> re.Pattern[str]:
    if backend == "lean":
        kw = r"(?:theorem|lemma|def|abbrev|instance|example|axiom|opaque|structure|inductive|class)"
    else:
        kw = (
            r"(?:Theorem|Lemma|Fact|Remark|Corollary|Proposition|Property|Definition|Fixpoint"
            r"|CoFixpoint|Example|Let|Axiom|Parameter|Conjecture|Hypothesis|Variable|Inductive"
            r"|Record|Structure|Class|Instance|Program\s+\w+)"
        )
    return re.compile(rf"(?<![\w.']){kw}\s+{re.escape(name)}(?![\w'])")


COQ_HOLES = re.compile(r"(?<![\w.'])(admit|Admitted|Abort|give_up)(?![\w'])")
LEAN_HOLES = re.compile(r"(?<![\w.'])(sorry|admit)(?![\w'?!])")
