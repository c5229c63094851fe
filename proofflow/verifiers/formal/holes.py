"""Hole editing for the draft → sketch → prove flows: find the holes of a source, fill one,
and mask failing steps into holes (DSP+). What a hole looks like and how it is filled or
masked is the backend's; numbering holes and picking one is the same for every backend."""

from __future__ import annotations

import re
from typing import Protocol

from proofflow.verifiers.formal.backend import FormalBackend
from proofflow.verifiers.formal.text import line_col
from proofflow.verifiers.formal.types import Hole, Message


class HoleSyntax(Protocol):
    """What finding holes needs: a FormalBackend has it, and so does a backend's leaf
    rules object (its checker finds holes without importing the backend)."""

    @property
    def hole_pattern(self) -> re.Pattern[str]: ...

    def strip_comments(self, source: str) -> str: ...


def split_holes(source: str, backend: HoleSyntax) -> list[Hole]:
    """The holes of a source in order (Lean `sorry`/`admit`; Coq `admit`, `Admitted.`,
    `Abort.`, `give_up`). Offsets index into `source`; comments are ignored."""
    code = backend.strip_comments(source)
    holes = []
    for m in backend.hole_pattern.finditer(code):
        line, col = line_col(source, m.start())
        holes.append(Hole(line=line, column=col, kind=m.group(1), start=m.start(), end=m.end()))
    return holes


def fill_hole(source: str, hole_index: int, proof_text: str, backend: FormalBackend) -> str:
    """Replace hole number `hole_index` (as split_holes numbers them) by proof_text
    (FormalBackend.fill_hole says how: Lean indents extra lines to the hole's column, Coq
    chains sentences inside a tactic expression)."""
    holes = split_holes(source, backend)
    if not 0 <= hole_index < len(holes):
        raise IndexError(f"hole {hole_index} out of range ({len(holes)} holes)")
    return backend.fill_hole(source, holes[hole_index], proof_text.strip())


def mask_failing_lines(source: str, messages: list[Message], backend: FormalBackend) -> str:
    """DSP+ masking: every step carrying an error becomes a hole instead of resampling
    (FormalBackend.mask_failing_lines). Errors in the header, the statement or on `Qed`
    are left alone; Coq stops at the first error, so run again after re-checking."""
    if not any(m.severity == "error" and m.line and m.line > 0 for m in messages):
        return source
    return backend.mask_failing_lines(source, messages)
