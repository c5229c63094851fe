"""Hole editing for the draft → sketch → prove flows: find the holes of a source, fill one,
and mask failing steps into holes (DSP+)."""

from __future__ import annotations

import re

from proofflow.verifiers.coq import lex as coq_lex
from proofflow.verifiers.formal.text import COQ_HOLES, LEAN_HOLES, strip_comments
from proofflow.verifiers.formal.types import Backend, Hole, Message


def split_holes(source: str, backend: Backend) -> list[Hole]:
    """The holes of a source in order: Lean `sorry`/`admit`; Coq `admit`, `Admitted.`,
    `Abort.`, `give_up`. Offsets index into `source`; comments are ignored."""
    code = strip_comments(source, backend)
    pattern = COQ_HOLES if backend == "coq" else LEAN_HOLES
    holes = []
    for m in pattern.finditer(code):
        line, col = coq_lex.line_col(source, m.start())
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
        return source[: h.start] + filled + source[h.end :]
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
        if re.match(
            r"\s*(Theorem|Lemma|Example|Corollary|Proposition|Fact|Remark|Qed|Defined|Proof|Require|From|Open|Definition|Fixpoint)\b",
            code,
        ):
            continue
        by = re.search(r"^\s*(?:assert|have|enough|cut|replace)\b.*?\bby\b", code, re.S)
        if by:
            edits.append((sent.start, sent.end, sent.text[: by.end()] + " admit."))
        else:
            edits.append((sent.start, sent.end, "admit."))
    for start, end, text in sorted(edits, reverse=True):
        source = source[:start] + text + source[end:]
    return source
