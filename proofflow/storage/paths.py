"""Files proofflow keeps beside a database: `<db>.work/` holds each run's lock file
(storage/lease.py) and the short-lived JSONL batches a flush hands to DuckDB
(storage/bulk.py). Beside the database, not in /tmp, so that prompts in a batch never
leave the place the user chose for their data, and a killed run's leftovers are found
and removed by the next run on the same database."""

from __future__ import annotations

from pathlib import Path


def work_dir(db_path: str | Path) -> Path:
    db = Path(db_path)
    return db.with_name(db.name + ".work")
