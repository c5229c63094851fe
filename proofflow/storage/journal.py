"""A BatchWriter's journal: every row it is handed, appended to a file beside the database
the moment it arrives, until a flush has written it.

Why: the writer batches rows for about half a second (one DuckDB transaction per flush
is what keeps the file free for readers; a flush costs ~0.1 s here), so a SIGKILL lost
the answers of every model call that returned since the last flush, and a resume paid
for them again (bench/bench_crash.py: ~9 calls per kill). A write to an open file
survives the death of the process (the kernel has it), so the journal keeps those rows;
the next process that opens the database for writing replays journals of processes
that are gone (INSERT OR IGNORE: a row both flushed and journaled is not duplicated) and
deletes them. A power cut can still lose the last rows: the journal is not fsync'ed,
which would cost more than the model call it protects here.

Files: `<db>.work/journal-<host>-<pid>-<n>.jsonl`, one line per row:
{"t": table, "r": {column: value}}. A writer rotates to a new file at every flush and
deletes the old ones once the flush has committed.

Model calls in flight (storage/in_flight.py) are journaled before they are sent, as
`calls` rows with status `interrupted`, and written again into each new file while they
are in flight; the call's final row (same call_id) follows it in the journal. Replay
keeps the final row of a call when there is one, so only calls that were never answered
show as `interrupted`.
"""

from __future__ import annotations

import json
import logging
import os
import socket
from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import IO, Any

import duckdb

from proofflow.storage.bulk import ROW_JSON, insert_rows, stale_files
from proofflow.storage.records import WRITE_ORDER, CallRow, Row

log = logging.getLogger(__name__)

PREFIX = "journal-"
# Row types by table, for replay (records.WRITE_ORDER names every table's row type).
ROW_TYPES: dict[str, type[Row]] = {t.table: t for t in WRITE_ORDER}


class Journal:
    """Not thread-safe: the BatchWriter calls it under its own lock."""

    def __init__(self, directory: Path):
        self.directory = directory
        self._seq = 0
        self._file: IO[str] | None = None
        self._path: Path | None = None
        self.broken = False

    def append(self, rows: Iterable[Row]) -> None:
        if self.broken:
            return
        lines = [ROW_JSON.encode({"t": r.table, "r": r.as_dict()}) for r in rows]
        if not lines:
            return
        try:
            if self._file is None:
                self.directory.mkdir(parents=True, exist_ok=True)
                self._seq += 1
                self._path = self.directory / f"{PREFIX}{socket.gethostname()}-{os.getpid()}-{self._seq}.jsonl"
                self._file = self._path.open("a", encoding="utf-8")
            self._file.write("\n".join(lines) + "\n")
            self._file.flush()  # into the kernel: a killed process's last rows survive it
        except OSError as exc:
            # The journal is a safety net: a full disk or an unwritable folder must not
            # stop the run (its rows still go to the database at the next flush).
            self.broken = True
            log.error("cannot write the journal in %s (%s): rows queued at a crash will be lost",
                      self.directory, exc)

    def rotate(self) -> Path | None:
        """Close the current file (its rows are about to be flushed); the next append
        starts another. Returns the closed file's path, to discard after the flush."""
        if self._file is None:
            return None
        self._file.close()
        path, self._file, self._path = self._path, None, None
        return path

    @staticmethod
    def discard(paths: Sequence[Path]) -> None:
        for path in paths:
            try:
                path.unlink()
            except FileNotFoundError:
                pass


def replay(con: duckdb.DuckDBPyConnection, directory: Path) -> int:
    """Write the rows of journals left by processes of this host that are gone, in the
    caller's open connection, then delete those journals; returns the rows replayed."""
    paths = stale_files(directory, PREFIX)
    if not paths:
        return 0
    by_type: dict[type[Row], list[Row]] = defaultdict(list)
    for path in sorted(paths, key=_written_order):
        for row in _read(path):
            by_type[type(row)].append(row)
    if CallRow in by_type:
        by_type[CallRow] = _answered_first(by_type[CallRow])
    con.execute("BEGIN TRANSACTION")
    try:
        order = [t for t in WRITE_ORDER if t in by_type] + [t for t in by_type if t not in WRITE_ORDER]
        for row_type in order:
            insert_rows(con, row_type, by_type[row_type], directory)
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    Journal.discard(paths)
    count = sum(len(v) for v in by_type.values())
    if count:
        log.warning("recovered %d rows a killed process had not written yet (%s)", count, directory)
    return count


def _answered_first(rows: list[Row]) -> list[Row]:
    """One row per call: its final row (`ok` / `error`) over the `interrupted` ones written
    before it was sent, else the newest of these (llm/late_count.py records it again with
    its prompt tokens counted). insert_rows keeps the first row of a key."""
    final = {r.call_id for r in rows if isinstance(r, CallRow) and r.status != "interrupted"}
    newest = {r.call_id: i for i, r in enumerate(rows) if isinstance(r, CallRow) and r.status == "interrupted"}
    return [r for i, r in enumerate(rows) if not isinstance(r, CallRow) or r.status != "interrupted"
            or (r.call_id not in final and newest[r.call_id] == i)]


def _written_order(path: Path) -> tuple[int, int]:
    """(pid, n) of `journal-<host>-<pid>-<n>.jsonl`: a process's files in the order it
    wrote them (by name, file 10 came before file 2)."""
    parts = path.name.removesuffix(".jsonl").rsplit("-", 2)
    pid, n = (parts[-2], parts[-1]) if len(parts) == 3 else ("", "")
    return (int(pid), int(n)) if pid.isdigit() and n.isdigit() else (0, 0)


def _read(path: Path) -> list[Row]:
    rows: list[Row] = []
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return rows
    for line in text.splitlines():
        try:
            entry: dict[str, Any] = json.loads(line)
            rows.append(ROW_TYPES[entry["t"]](**entry["r"]))
        except (ValueError, KeyError, TypeError):
            continue  # the line being written when the process died
    return rows
