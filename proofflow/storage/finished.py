"""What the store says about a run that may have nothing left to do, read in one
read-only open: resuming a finished run is a lookup, not a replay (issue 19.4).

`finished_run` answers only when every sign says the stored rows are the run's last
word: status `completed`, no live process holding the run, no journal of a killed
process waiting to be replayed (its rows are not in the file yet), the metric views of
this proofflow version. Anything else is None, and the caller runs the flow, which
settles all of that as it always has.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass

import duckdb

from proofflow.processes import pid_alive
from proofflow.storage.bulk import select_rows
from proofflow.storage.db import StorageError, Store
from proofflow.storage.journal import PREFIX as JOURNAL_PREFIX
from proofflow.storage.lease import current_holder
from proofflow.storage.metrics import VIEWS_VERSION
from proofflow.storage.records import RunProblemLineRow, RunRow


@dataclass(frozen=True)
class FinishedRun:
    run: RunRow
    done: frozenset[str]  # problem ids with a result
    problem_file: list[RunProblemLineRow]  # the file the run was started with, line by line
    candidate_stages: tuple[str, ...]  # what the views count for the run's strategy


def finished_run(store: Store, run_id: str) -> FinishedRun | None:
    """The stored run and what it holds, if it is finished and nothing is pending; None
    when the flow must decide (no such run, not completed, held by a process, a journal
    to replay, a file from another proofflow version, a read that failed)."""
    if not store.path.is_file() or _journal_pending(store):
        return None
    if current_holder(store.path, run_id) is not None:
        return None
    try:
        with store.connect(read_only=True) as con:
            runs = select_rows(con, RunRow, "WHERE run_id = ?", [run_id])
            if not runs or runs[0].status != "completed":
                return None
            version = con.execute("SELECT value FROM schema_info WHERE key = 'views_version'").fetchone()
            if version is None or version[0] != VIEWS_VERSION:
                return None
            done = con.execute("SELECT problem_id FROM results WHERE run_id = ?", [run_id]).fetchall()
            lines = select_rows(con, RunProblemLineRow, "WHERE run_id = ? ORDER BY line", [run_id])
            stages = con.execute("SELECT stage FROM strategy_candidate_stages WHERE strategy = ? ORDER BY stage",
                                 [runs[0].strategy]).fetchall()
    except (StorageError, duckdb.Error):
        return None
    return FinishedRun(runs[0], frozenset(r[0] for r in done), lines, tuple(r[0] for r in stages))


def _journal_pending(store: Store) -> bool:
    """A journal the next writer would replay: one of a process that is gone, or of
    another host (whose liveness this host cannot see). A live local process's journal
    belongs to the run it holds, which the lease check sees."""
    if not store.work_dir.is_dir():
        return False
    host = socket.gethostname()
    for path in store.work_dir.glob(f"{JOURNAL_PREFIX}*.jsonl"):
        parts = path.name[len(JOURNAL_PREFIX):].rsplit("-", 2)  # the host may contain dashes
        if len(parts) != 3 or parts[0] != host or not parts[1].isdigit() or not pid_alive(int(parts[1])):
            return True
    return False
