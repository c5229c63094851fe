"""A run's problem file is part of its identity.

Why: problems are keyed by content, so resuming a run with an edited file used to merge
silently — change one answer in a 10-line file and the run reported 21 problems. Now the
file a run starts with is recorded line by line (a digest of each line's JSON value, key
order and spacing ignored) and a resume compares the file given against it:

- the same lines: the run resumes (whatever --limit says: the whole file is compared);
- lines added, nothing else changed, and the user passed --extend: the new problems join
  the run and the record is updated;
- otherwise: refused with what changed, line by line.
"""

from __future__ import annotations

import difflib
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from proofflow.problems.jsonl import DEFAULT_MAX_LINE_BYTES, ProblemFileError, read_jsonl
from proofflow.storage.db import Store
from proofflow.storage.records import RunProblemLineRow


class ProblemFileChanged(ProblemFileError):
    """The problem file differs from the one the run was started with."""

    def __init__(self, path: Path | str, run: str, changes: FileChanges, extend: bool):
        shown = changes.describe()
        if extend:
            advice = ("--extend only adds new problems to a run; lines that changed or were removed "
                      "cannot be merged into it. Restore them, or start another run (--run NAME).")
        else:
            advice = ("Rerun with the file as it was, start another run (--run NAME), or pass "
                      "--extend to add new lines' problems to this run." if changes.only_additions
                      else "Rerun with the file as it was, or start another run (--run NAME).")
        super().__init__(path, None, None,
                         f"differs from the file run {run!r} was started with:\n{shown}\n{advice}")
        self.changes = changes


@dataclass(frozen=True)
class FileLine:
    line: int
    digest: str
    label: str
    content: str


@dataclass
class FileChanges:
    changed: list[tuple[FileLine, FileLine]] = field(default_factory=list)  # (was, now)
    removed: list[FileLine] = field(default_factory=list)
    added: list[FileLine] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.changed or self.removed or self.added)

    @property
    def only_additions(self) -> bool:
        return bool(self.added) and not self.changed and not self.removed

    def describe(self, limit: int = 12) -> str:
        lines = [f"  line {new.line} ({new.label}): {_what_changed(old, new)}" for old, new in self.changed]
        lines += [f"  line {old.line} ({old.label}): removed" for old in self.removed]
        lines += [f"  line {new.line} ({new.label}): added" for new in self.added]
        more = len(lines) - limit
        return "\n".join(lines[:limit] + ([f"  … and {more} more"] if more > 0 else []))


def file_lines(path: str | Path, max_line_bytes: int = DEFAULT_MAX_LINE_BYTES) -> list[FileLine]:
    """Every non-blank line of a problem file, as digests (raises ProblemFileError)."""
    out = []
    for number, value in read_jsonl(Path(path), max_line_bytes):
        content = json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        digest = hashlib.sha256(content.encode()).hexdigest()[:24]
        out.append(FileLine(number, digest, _label(value, number), content))
    return out


def compare(was: list[FileLine], now: list[FileLine]) -> FileChanges:
    """What changed from `was` to `now`, by line (a diff of the digest sequences)."""
    changes = FileChanges()
    matcher = difflib.SequenceMatcher(a=[x.digest for x in was], b=[x.digest for x in now], autojunk=False)
    for op, a0, a1, b0, b1 in matcher.get_opcodes():
        if op == "equal":
            continue
        olds, news = was[a0:a1], now[b0:b1]
        if op == "replace":
            paired = min(len(olds), len(news))
            changes.changed += list(zip(olds[:paired], news[:paired]))
            olds, news = olds[paired:], news[paired:]
        changes.removed += olds
        changes.added += news
    return changes


def check_problem_file(store: Store, run_id: str, run_name: str, path: str | Path,
                       extend: bool = False, max_line_bytes: int = DEFAULT_MAX_LINE_BYTES) -> FileChanges:
    """Refuse (ProblemFileChanged) a problem file that differs from the run's, unless it
    only adds lines and `extend` is set; record the file for a new run (or an old run
    stored before files were recorded) and for an extended one. Call it while holding
    the run's lease and before the run starts work; returns what changed (empty if
    nothing did)."""
    now = file_lines(path, max_line_bytes)
    was = [FileLine(r.line, r.digest, r.label, r.content) for r in store.problem_file(run_id)]
    changes = compare(was, now) if was else FileChanges()
    if changes and not (extend and changes.only_additions):
        raise ProblemFileChanged(path, run_name, changes, extend)
    if not was or changes:
        store.set_problem_file(run_id, [RunProblemLineRow(run_id, x.line, x.digest, x.label, x.content)
                                        for x in now])
    return changes


def _label(value: Any, line: int) -> str:
    if isinstance(value, dict):
        for key in ("id", "unique_id", "name"):
            if value.get(key) is not None and value.get(key) != "":
                return f"{key} {value[key]}"
    return f"line {line}"


def _what_changed(old: FileLine, new: FileLine) -> str:
    try:
        a, b = json.loads(old.content), json.loads(new.content)
    except ValueError:
        return "changed"
    if not (isinstance(a, dict) and isinstance(b, dict)):
        return "changed"
    parts = []
    for key in sorted(set(a) | set(b)):
        if a.get(key) != b.get(key):
            if key not in a:
                parts.append(f"{key} added")
            elif key not in b:
                parts.append(f"{key} removed")
            else:
                parts.append(f"{key} was {_short(a[key])}, now {_short(b[key])}")
    return "; ".join(parts) or "changed"


def _short(value: Any, width: int = 40) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= width else text[:width - 1] + "…"
