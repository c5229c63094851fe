"""Text helpers every backend shares: whitespace normalised, positions, comments blanked
out by a pattern. The language-specific parts (which comments, which statement core,
which holes) are the backend's (FormalBackend)."""

from __future__ import annotations

import re


def normalize_ws(text: str) -> str:
    return " ".join(text.split())


def blank(match: re.Match[str]) -> str:
    """A match replaced by spaces, its newlines kept: positions stay where they were."""
    return re.sub(r"[^\n]", " ", match.group(0))


def line_col(src: str, offset: int) -> tuple[int, int]:
    """1-based line, 0-based column (characters) of a character offset."""
    line = src.count("\n", 0, offset) + 1
    col = offset - (src.rfind("\n", 0, offset) + 1)
    return line, col


def offset_of(src: str, line: int, col: int) -> int:
    """Inverse of line_col (clamped to the source)."""
    lines = src.split("\n")
    line = max(1, min(line, len(lines)))
    return sum(len(x) + 1 for x in lines[: line - 1]) + max(0, min(col, len(lines[line - 1])))


def declaration_of(keywords: str, name: str) -> re.Pattern[str]:
    """`<keyword> name` as a whole word, `keywords` being a regex alternation."""
    return re.compile(rf"(?<![\w.']){keywords}\s+{re.escape(name)}(?![\w'])")
