"""Lean's hole editing: fill a `sorry`, mask failing tactic steps into holes (DSP+).
Text only, by indentation (Lean tactic blocks are layout-sensitive)."""

from __future__ import annotations

import re

from proofflow.verifiers.formal.types import Hole, Message

_HAVE = re.compile(r"^(?P<indent>\s*)(?:have|obtain|suffices)\b.*?:=\s*by\b(?P<rest>.*)$")
_NOT_MASKED = re.compile(r"\s*(theorem|lemma|example|import|open|set_option)\b")


def fill_hole(source: str, h: Hole, text: str) -> str:
    """The tactic text replaces `sorry`; extra lines are indented to the hole's column so
    they stay in the same tactic block."""
    pad = " " * h.column
    body = text.split("\n")
    filled = body[0] + "".join("\n" + pad + ln.strip() if ln.strip() else "\n" for ln in body[1:])
    return source[: h.start] + filled + source[h.end :]


def mask_failing_lines(source: str, messages: list[Message]) -> str:
    """An error inside `have hN : T := by <tactics>` (the `have` line or its indented
    block) turns the step into `have hN : T := by sorry`; an error on another tactic line
    turns that line into `sorry`. The statement, imports and options are left alone."""
    error_lines = sorted({m.line for m in messages if m.severity == "error" and m.line and m.line > 0})
    lines: list[str | None] = list(source.split("\n"))
    masked: set[int] = set()
    for err in error_lines:
        idx = err - 1
        if idx >= len(lines) or idx in masked:
            continue
        # Find the innermost enclosing `have ... := by` whose block contains idx.
        target = None
        for j in range(idx, -1, -1):
            m = _HAVE.match(lines[j] or "")
            if not m:
                continue
            indent = len(m.group("indent"))
            end = j + 1
            while end < len(lines) and (not (lines[end] or "").strip()
                                        or len(lines[end] or "") - len((lines[end] or "").lstrip()) > indent):
                end += 1
            if j <= idx < end:
                target = (j, end, m)
                break
        if target:
            j, end, m = target
            head = (lines[j] or "")[: m.start("rest")]
            lines[j] = head + " sorry"
            for k in range(j + 1, end):
                if (lines[k] or "").strip():
                    lines[k] = None
                    masked.add(k)
            masked.add(j)
        else:
            line = lines[idx] or ""
            if _NOT_MASKED.match(line):
                continue
            lines[idx] = line[: len(line) - len(line.lstrip())] + "sorry"
            masked.add(idx)
    return "\n".join(x for x in lines if x is not None)


def whole_proof_hole(statement: str) -> str:
    stmt = statement.rstrip()
    return stmt + ("" if stmt.endswith("by") else " by") + "\n  sorry\n"
