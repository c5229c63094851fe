"""Reading a JSONL problem file line by line, with errors that name the file and line.

Why the checks come before and during the read, not after it:
- only a regular file is opened: a FIFO (or a device, `<(...)`) blocks forever on open or
  read, and is read more than once by a run (the loader, then the check of the file
  against the run's) — refused by what it is, before opening it;
- a line is read with a bound (`max_line_bytes`), never whole: one 1 GB line used to be
  read into 12.8 GB of memory and sent to the model.
"""

from __future__ import annotations

import json
import logging
import os
import re
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

DEFAULT_MAX_LINE_BYTES = 1 << 20  # 1 MiB: ~40x the longest miniF2F/MATH-500 line
_CHUNK = 1 << 20
_BOM = b"\xef\xbb\xbf"


class ProblemFileError(ValueError):
    def __init__(self, path: Path | str, line: int | None, field_name: str | None, message: str):
        where = f"{path}" + (f", line {line}" if line else "") + (f", field '{field_name}'" if field_name else "")
        super().__init__(f"{where}: {message}")
        self.path, self.line, self.field, self.reason = str(path), line, field_name, message


def _not_regular(mode: int) -> str | None:
    """What a file that is not a regular file is, in words (None for a regular file)."""
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return "is a directory; give a JSONL problem file"
    kinds = [(stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISCHR, "a character device"),
             (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket")]
    what = next((name for test, name in kinds if test(mode)), "not a regular file")
    return (f"is {what}, not a regular file; a run reads its problem file more than once, "
            "so write the problems to a file and give that")


def open_problem_file(path: Path) -> BinaryIO:
    """Open a regular file for reading; anything else is refused before it is opened."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise ProblemFileError(path, None, None, "file does not exist") from None
    except OSError as exc:
        raise ProblemFileError(path, None, None, f"cannot read it: {exc.strerror or exc}") from None
    refused = _not_regular(mode)
    if refused:
        raise ProblemFileError(path, None, None, refused)
    try:
        return path.open("rb")
    except OSError as exc:
        raise ProblemFileError(path, None, None, f"cannot read it: {exc.strerror or exc}") from None


def _too_long(f: BinaryIO, path: Path, number: int, head: bytes, limit: int) -> ProblemFileError:
    """The error for a line over the limit, with its full size: the rest of the line (if
    `head` is not all of it) is skipped in bounded chunks, so the size is known without
    holding the line."""
    size, tail = len(head), head[-2:]
    while not tail.endswith(b"\n"):
        chunk = f.readline(_CHUNK)
        if not chunk:
            break
        size, tail = size + len(chunk), (tail + chunk)[-2:]
    size -= 2 if tail == b"\r\n" else 1 if tail.endswith(b"\n") else 0  # the line, not its ending
    return ProblemFileError(path, number, None,
                            f"line is {size:,} bytes, over the limit of {limit:,} bytes "
                            "(problems.max_line_bytes in the config file)")


def read_lines(path: Path, max_line_bytes: int = DEFAULT_MAX_LINE_BYTES) -> Iterator[tuple[int, str]]:
    """(line number, text) of every line, split on "\\n" only; a clear ProblemFileError for a
    missing or non-regular file, a line over `max_line_bytes` (file, line number, size),
    or bytes that are not UTF-8 (with the line they are on). A UTF-8 byte order mark
    (Windows editors write one) is accepted and dropped."""
    with open_problem_file(path) as f:
        if f.read(len(_BOM)) != _BOM:
            f.seek(0)
        number = 0
        while True:
            try:
                raw = f.readline(max_line_bytes + 2)  # the line, "\r\n" and one byte more
            except OSError as exc:
                raise ProblemFileError(path, number + 1, None, f"cannot read it: {exc.strerror or exc}") from None
            if not raw:
                return
            number += 1
            content = raw.rstrip(b"\n").rstrip(b"\r") if raw.endswith(b"\n") else raw
            if len(content) > max_line_bytes:
                raise _too_long(f, path, number, raw, max_line_bytes)
            try:
                yield number, content.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise ProblemFileError(path, number, None,
                                       f"not UTF-8 text (byte {content[exc.start]:#04x}: {exc.reason})") from None


_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def read_jsonl(path: Path, max_line_bytes: int = DEFAULT_MAX_LINE_BYTES) -> Iterator[tuple[int, Any]]:
    """(line number, parsed value) for every non-blank line; raises ProblemFileError."""
    for number, raw in read_lines(path, max_line_bytes):
        if not raw.strip():
            continue
        try:
            value = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise ProblemFileError(path, number, None, f"invalid JSON: {exc.msg} at column {exc.colno}") from None
        # Only a \ud800-\udfff escape can put one in (the line was decoded as UTF-8): most
        # lines need no walk over every string (1.4 s over GSM8K's 1,319 lines, profiled).
        bad = _lone_surrogate(value) if _SURROGATE_ESCAPE.search(raw) else None
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


class Duplicates:
    """Refuses (or, with `dedupe`, drops) a line that repeats an earlier line's problem.

    Why: problems are keyed by content, so two identical lines silently became one
    problem, and three lines with the same id ran as three problems. Now a repeat is an
    error naming both lines, unless the user asked to keep the first (`--dedupe`), and
    then how many were dropped is said once (`report`)."""

    def __init__(self, path: Path, dedupe: bool = False):
        self.path, self.dedupe = path, dedupe
        self._first: dict[str, int] = {}
        self.dropped: list[int] = []

    def admit(self, line: int, keys: list[tuple[str, str]]) -> bool:
        """True for a new problem; False (dedupe) or ProblemFileError for a repeat.
        `keys`: (key, what it is in words), e.g. ("id\\0q1", "id 'q1'")."""
        for key, what in keys:
            first = self._first.get(key)
            if first is None:
                continue
            if not self.dedupe:
                raise ProblemFileError(self.path, line, None,
                                       f"duplicate {what}: {self.path}:{first} and {self.path}:{line}; "
                                       "remove one, or pass --dedupe to keep the first")
            self.dropped.append(line)
            return False
        for key, _ in keys:
            self._first[key] = line
        return True

    def report(self) -> None:
        if self.dropped:
            shown = ", ".join(map(str, self.dropped[:10])) + (", …" if len(self.dropped) > 10 else "")
            logging.getLogger("proofflow.problems").warning(
                "%s: --dedupe dropped %d duplicate line(s) (line %s), kept the first of each",
                self.path, len(self.dropped), shown)
