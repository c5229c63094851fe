"""Files proofflow keeps beside a database: `<db>.work/` holds each run's lock file
(storage/lease.py) and the short-lived JSONL batches a flush hands to DuckDB
(storage/bulk.py). Beside the database, not in /tmp, so that prompts in a batch never
leave the place the user chose for their data, and a killed run's leftovers are found
and removed by the next run on the same database."""

from __future__ import annotations

import os
from pathlib import Path

from proofflow.storage.errors import DatabaseLocationError


def work_dir(db_path: str | Path) -> Path:
    db = Path(db_path)
    return db.with_name(db.name + ".work")


def logs_dir(db_path: str | Path) -> Path:
    """`<db folder>/<db name>-logs/`: the run commands' log files, beside the data they explain."""
    db = Path(db_path)
    return db.parent / f"{db.stem}-logs"


def _read_only_fs(folder: Path) -> bool:
    try:
        return bool(os.statvfs(folder).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def check_db_location(db_path: str | Path) -> None:
    """Refuse, before anything is created, a database path that cannot hold a database:
    a directory or other non-file, a read-only folder or file (DatabaseLocationError, one
    line naming the path). A missing folder is fine: it is created like before."""
    db = Path(db_path)
    hint = "point --db (or PROOFFLOW_DB_PATH) at a file in a writable folder"
    if db.exists() and not db.is_file():
        what = "a directory" if db.is_dir() else "not a regular file"
        raise DatabaseLocationError(f"database path {db} is {what}; {hint}")
    folder = next((p for p in [db.parent, *db.parent.parents] if p.exists()), Path("."))
    # The database, its .work folder and its -logs folder are all written in this folder.
    if not folder.is_dir():
        raise DatabaseLocationError(f"database folder {folder} is not a directory; {hint}")
    if _read_only_fs(folder):
        raise DatabaseLocationError(f"database folder {folder} is on a read-only file system; {hint}")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise DatabaseLocationError(f"database folder {folder} is not writable; {hint}")
    if db.exists() and not os.access(db, os.R_OK | os.W_OK):
        raise DatabaseLocationError(f"database {db} is not readable and writable; {hint}")
