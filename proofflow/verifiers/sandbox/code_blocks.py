"""Finding the program in a model's answer. Pure text handling: nothing is run here."""

from __future__ import annotations

import re

_FENCE = re.compile(r"```[ \t]*(?P<lang>[\w+-]*)[^\n]*\n(?P<body>.*?)(?:```|\Z)", re.S)


def code_blocks(text: str, languages: tuple[str, ...] = ("python", "py", "python3", "")) -> list[str]:
    """Fenced code blocks in order; an unterminated last fence counts (generation was
    cut off), so the sandbox, not this parser, decides whether it runs."""
    blocks = []
    for match in _FENCE.finditer(text or ""):
        if match["lang"].lower() in languages and match["body"].strip():
            blocks.append(match["body"])
    return blocks


def last_code_block(text: str) -> str | None:
    blocks = code_blocks(text)
    return blocks[-1] if blocks else None
