"""Coq's hole editing: fill a hole, mask failing sentences into holes (DSP+), and close a
proof that a model or a mask left open. Text only; the lexer says where sentences are."""

from __future__ import annotations

import re

from proofflow.verifiers.coq import lex as coq_lex
from proofflow.verifiers.formal.types import Hole, Message

_CLOSED = re.compile(r"(?:Qed|Defined|Admitted|Abort)\s*\.$")
_QED = re.compile(r"(?s)^(.*)\b(Qed|Defined)\s*\.\s*$")
_NOT_MASKED = re.compile(
    r"\s*(Theorem|Lemma|Example|Corollary|Proposition|Fact|Remark|Qed|Defined|Proof|Require|From|Open|Definition"
    r"|Fixpoint)\b"
)
_BY = re.compile(r"^\s*(?:assert|have|enough|cut|replace)\b.*?\bby\b", re.S)


def fill_hole(source: str, h: Hole, text: str) -> str:
    """A hole that is a whole sentence (`admit.`) takes any tactic sentences; one inside a
    tactic expression (`by admit`, `; admit`) takes one tactic, so several sentences are
    chained with `;` in parentheses; `Admitted.` becomes the text followed by `Qed.`."""
    if h.kind in ("Admitted", "Abort"):
        end = h.end + 1 if source[h.end : h.end + 1] == "." else h.end
        tail = text if text.endswith(".") else text + "."
        return source[: h.start] + tail + "\nQed." + source[end:]
    before = source[: h.start].rstrip()
    whole_sentence = (before == "" or before[-1] in ".{}-+*:") and source[h.end : h.end + 1] == "."
    if whole_sentence:
        tail = text if text.endswith(".") else text + "."
        return source[: h.start] + tail + source[h.end + 1 :]
    parts = [
        s.text.rstrip(".").strip() for s in coq_lex.split_sentences(text if text.endswith(".") else text + ".")[0]
    ]
    expr = parts[0] if len(parts) == 1 else "(" + "; ".join(parts) + ")"
    return source[: h.start] + expr + source[h.end :]


def mask_failing_lines(source: str, messages: list[Message]) -> str:
    """An error in `assert (hN : T) by tac.` (or ssreflect `have ... by tac.`) gives
    `... by admit.`; an error in another tactic sentence turns the sentence into
    `admit.`. Errors on the statement, `Qed`, imports are left alone."""
    try:
        sentences, _ = coq_lex.split_sentences(source)
    except coq_lex.CoqLexError:
        return source
    edits: list[tuple[int, int, str]] = []
    for msg in messages:
        if msg.severity != "error" or not msg.line or msg.line < 1:
            continue
        off = coq_lex.offset_of(source, msg.line, msg.column or 0)
        sent = next((s for s in sentences if s.start <= off < s.end), None)
        if sent is None or any(e[0] == sent.start for e in edits):
            continue
        code = sent.code
        if _NOT_MASKED.match(code):
            continue
        by = _BY.search(code)
        if by:
            edits.append((sent.start, sent.end, sent.text[: by.end()] + " admit."))
        else:
            edits.append((sent.start, sent.end, "admit."))
    for start, end, text in sorted(edits, reverse=True):
        source = source[:start] + text + source[end:]
    return source


def close_open_proof(source: str) -> str:
    """A proof that ends with goals left ('Attempt to save an incomplete proof') gets an
    `all: admit.` hole before its Qed, so automation can try the leftovers."""
    m = _QED.match(source.rstrip())
    if m:
        return m.group(1).rstrip() + "\nall: admit.\n" + m.group(2) + ".\n"
    return source.rstrip() + "\nall: admit.\nQed.\n"


def whole_proof_hole(statement: str) -> str:
    return statement.strip() + "\nProof.\nadmit.\nQed.\n"


def ensure_closed(source: str) -> str:
    """Masking a sentence that swallowed the final `Qed.` (a run-on model text has no
    period before it) must not leave the proof open."""
    if not _CLOSED.search(source.rstrip()):
        return source.rstrip() + "\nQed.\n"
    return source
