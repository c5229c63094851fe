"""Export runs' rows to Parquet or CSV, one file per table, for sharing.

DuckDB's own COPY writes the files (no pyarrow needed). Every table is copied on one
read-only connection, so the files are one consistent snapshot even while a run writes:
no verdict in verdicts.parquet lacks its sample in samples.parquet.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from proofflow.storage.db import StorageError, Store

FORMATS = {"parquet": "(FORMAT parquet, COMPRESSION zstd)", "csv": "(FORMAT csv, HEADER true)"}

# Rows of the given runs, table by table ($runs is a list of run ids).
_TABLE_FILTERS: dict[str, str] = {
    "runs": "SELECT * FROM runs WHERE list_contains($runs, run_id) ORDER BY started_at",
    "problems": (
        "SELECT * FROM problems WHERE problem_id IN "
        "(SELECT problem_id FROM v_run_problem_ids WHERE list_contains($runs, run_id)) "
        "ORDER BY problem_id"
    ),
    "run_problems": "SELECT * FROM run_problems WHERE list_contains($runs, run_id) "
                    "ORDER BY run_id, position",
    "calls": "SELECT * FROM calls WHERE list_contains($runs, run_id) ORDER BY created_at",
    "samples": "SELECT * FROM samples WHERE list_contains($runs, run_id) "
               "ORDER BY problem_id, round, stage, idx",
    # verdicts.run_id is denormalised; the sample's run is the authority.
    "verdicts": (
        "SELECT v.* FROM verdicts v JOIN samples s USING (sample_id) "
        "WHERE list_contains($runs, s.run_id) ORDER BY v.sample_id, v.verifier"
    ),
    "results": "SELECT * FROM results WHERE list_contains($runs, run_id) ORDER BY problem_id",
}


@dataclass(frozen=True)
class ExportedTable:
    table: str
    path: Path
    rows: int


def _sql_string(value: str) -> str:
    # COPY's target cannot be a bound parameter, so the path is quoted by hand.
    return "'" + value.replace("'", "''") + "'"


def export_runs(store: Store, run_ids: Sequence[str], out_dir: str | Path,
                fmt: str = "parquet") -> list[ExportedTable]:
    """Write <out_dir>/<table>.<fmt> for every table, holding only the given runs' rows."""
    if fmt not in FORMATS:
        raise StorageError(f"unknown export format {fmt!r}: use one of {', '.join(FORMATS)}")
    if not run_ids:
        raise StorageError("nothing to export: no run given")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    exported: list[ExportedTable] = []
    with store.connect(read_only=True) as con:
        for table, select in _TABLE_FILTERS.items():
            path = (out / f"{table}.{fmt}").resolve()
            con.execute(f"COPY ({select}) TO {_sql_string(str(path))} {FORMATS[fmt]}",
                        {"runs": list(run_ids)})
            (rows,) = con.fetchone() or (0,)
            exported.append(ExportedTable(table=table, path=path, rows=int(rows)))
    return exported
