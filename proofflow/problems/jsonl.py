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


def read_text(path: Path) -> str:
    """The file's text; a clear ProblemFileError for a missing file, a directory, an
    unreadable file or bytes that are not UTF-8 (with the line they are on). A UTF-8 byte
    order mark (Windows editors write one) is accepted and dropped."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ProblemFileError(path, None, None, "file does not exist") from None
    except IsADirectoryError:
        raise ProblemFileError(path, None, None, "is a directory; give a JSONL problem file") from None
    except OSError as exc:
        raise ProblemFileError(path, None, None, f"cannot read it: {exc.strerror or exc}") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise ProblemFileError(path, line, None,
                               f"not UTF-8 text (byte {data[exc.start]:#04x}: {exc.reason})") from None


def read_jsonl(path: Path) -> Iterator[tuple[int, Any]]:
    """(line number, parsed value) for every non-blank line; raises ProblemFileError."""
    for number, raw in enumerate(read_text(path).splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            value = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise ProblemFileError(path, number, None, f"invalid JSON: {exc.msg} at column {exc.colno}") from None
        bad = _lone_surrogate(value)
        if bad is not None:
            # JSON allows "\ud800" escapes, but such a string is not Unicode text: it fails
            # later, far from here, when written to the database or sent to a model.
            field_name, char = bad
            raise ProblemFileError(path, number, field_name,
                                   f"contains a lone surrogate \\u{ord(char):04x} (not valid Unicode text)")
        yield number, value


def _lone_surrogate(value: Any, where: str | None = None) -> tuple[str | None, str] | None:
    """(field path, the character) of the first lone surrogate in a parsed JSON value."""
    if isinstance(value, str):
        for ch in value:
            if "\ud800" <= ch <= "\udfff":
                return where, ch
        return None
    if isinstance(value, dict):
        for key, item in value.items():
            found = _lone_surrogate(key, where) or _lone_surrogate(item, key if where is None else f"{where}.{key}")
            if found:
                return found
    if isinstance(value, list):
        for i, item in enumerate(value):
            found = _lone_surrogate(item, f"{where or ''}[{i}]")
            if found:
                return found
    return None
