"""A small Coq lexer: comments, strings and sentence boundaries.

The warm coqtop session feeds Coq one sentence at a time (so every message is attributed
to the sentence that produced it and positions map back to the source), and the audit
must not be fooled by text inside comments. Both need to know where Coq itself would cut
the source, so this follows Coq's lexical rules closely enough for proof scripts:

- comments `(* ... *)` nest, and a `"` inside a comment opens a string that must close;
- strings are `"..."` with `""` as the escaped quote;
- a sentence ends at `.` followed by whitespace or end of input (so `Nat.add`, `x.1`
  and `..` do not end one);
- bullets (`-`, `+`, `*`, repeated) and braces `{` `}` at the start of a sentence are
  sentences of their own, as are goal-selector braces like `2: {`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from proofflow.verifiers.formal.text import line_col, offset_of

__all__ = ["CoqLexError", "Sentence", "line_col", "offset_of", "split_sentences", "strip_comments"]


class CoqLexError(ValueError):
    """The source cannot be cut into sentences (unterminated comment or string)."""

    def __init__(self, message: str, offset: int):
        super().__init__(message)
        self.offset = offset


@dataclass(frozen=True)
class Sentence:
    start: int  # character offset of the first non-blank, non-comment character
    end: int  # offset just past the terminating '.' (or the bullet / brace)
    text: str  # source[start:end], comments included

    @property
    def code(self) -> str:
        """The sentence with comments blanked out (same length, newlines kept)."""
        return strip_comments(self.text)


def _skip_comment(src: str, i: int) -> int:
    """src[i:i+2] == '(*'; return the offset just past the matching '*)'."""
    depth = 0
    n = len(src)
    start = i
    while i < n:
        if src.startswith("(*", i):
            depth += 1
            i += 2
        elif src.startswith("*)", i):
            depth -= 1
            i += 2
            if depth == 0:
                return i
        elif src[i] == '"':
            i = _skip_string(src, i)
        else:
            i += 1
    raise CoqLexError("unterminated comment", start)


def _skip_string(src: str, i: int) -> int:
    """src[i] == '"'; return the offset just past the closing quote."""
    start = i
    i += 1
    n = len(src)
    while i < n:
        if src[i] == '"':
            if i + 1 < n and src[i + 1] == '"':
                i += 2
                continue
            return i + 1
        i += 1
    raise CoqLexError("unterminated string", start)


def strip_comments(src: str) -> str:
    """Replace every comment by spaces (newlines kept), so offsets stay valid."""
    out: list[str] = []
    i = 0
    n = len(src)
    while i < n:
        if src.startswith("(*", i):
            j = _skip_comment(src, i)
            out.append("".join(c if c == "\n" else " " for c in src[i:j]))
            i = j
        elif src[i] == '"':
            j = _skip_string(src, i)
            out.append(src[i:j])
            i = j
        else:
            out.append(src[i])
            i += 1
    return "".join(out)


_BULLET = re.compile(r"(-+|\++|\*+)(?=\s|$)")
_SELECTOR_BRACE = re.compile(r"(?:\d+|\[\s*\w+\s*\])\s*:\s*\{")


def split_sentences(src: str) -> tuple[list[Sentence], str]:
    """Cut src into sentences. Returns (sentences, trailing): trailing is the non-blank
    text after the last sentence that has no terminator (empty when there is none)."""
    sentences: list[Sentence] = []
    i = 0
    n = len(src)
    start: int | None = None  # start of the current sentence, once non-blank seen
    while i < n:
        c = src[i]
        if src.startswith("(*", i):
            i = _skip_comment(src, i)
            continue
        if c.isspace():
            i += 1
            continue
        if start is None:
            # Bullets and braces only count at the start of a sentence.
            m = _BULLET.match(src, i)
            if m:
                sentences.append(Sentence(i, m.end(), src[i : m.end()]))
                i = m.end()
                continue
            if c in "{}":
                sentences.append(Sentence(i, i + 1, c))
                i += 1
                continue
            m = _SELECTOR_BRACE.match(src, i)
            if m:
                sentences.append(Sentence(i, m.end(), src[i : m.end()]))
                i = m.end()
                continue
            start = i
        if c == '"':
            i = _skip_string(src, i)
            continue
        if c == ".":
            nxt = src[i + 1] if i + 1 < n else ""
            prev = src[i - 1] if i > 0 else ""
            if (nxt == "" or nxt.isspace()) and prev != ".":
                sentences.append(Sentence(start, i + 1, src[start : i + 1]))
                start = None
                i += 1
                continue
            if nxt == ".":
                # '..' / '...' are tokens, not terminators; skip the run of dots.
                while i < n and src[i] == ".":
                    i += 1
                continue
        i += 1
    trailing = src[start:].strip() if start is not None else ""
    return sentences, trailing
