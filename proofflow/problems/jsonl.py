"""Reading a JSONL problem file line by line, with errors that name the file and line."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any


class ProblemFileError(ValueError):
    def __init__(self, path: Path | str, line: int | None, field_name: str | None, message: str):
        where = f"{path}" + (f", line {line}" if line else "") + (f", field '{field_name}'" if field_name else "")
        super().__init__(f"{where}: {message}")
        self.path, self.line, self.field, self.reason = str(path), line, field_name, message


def read_jsonl(path: Path) -> Iterator[tuple[int, Any]]:
    """(line number, parsed value) for every non-blank line; raises ProblemFileError."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ProblemFileError(path, None, None, "file does not exist") from None
    except UnicodeDecodeError as exc:
        raise ProblemFileError(path, None, None, f"not UTF-8 text ({exc.reason})") from None
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            yield number, json.loads(raw)
        except json.JSONDecodeError as exc:
            raise ProblemFileError(path, number, None, f"invalid JSON: {exc.msg} at column {exc.colno}") from None
