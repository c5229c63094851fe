"""A run's summary for the Prefect UI: the rows of a table artifact and a Markdown artifact.

Cheap by design (one query over v_run_summary, no expansion over k), so that a flow can
call these at the end of every run; `proofflow report` has the full picture.
"""

from __future__ import annotations

from typing import Any

from proofflow.report.tables import SUMMARY_FIELDS, summary_grid
from proofflow.storage import metrics
from proofflow.storage.db import StorageError, Store


def _summary(store: Store, run_id: str) -> dict[str, Any]:
    rows = metrics.run_summary_rows(store, [run_id])
    if not rows:
        raise StorageError(f"no run {run_id!r} in {store.path}")
    return rows[0]


def summary_table_rows(store: Store, run_id: str) -> list[dict[str, str]]:
    """[{"metric": ..., "value": ...}, ...] in display order; unknown values are "n/a"."""
    row = _summary(store, run_id)
    return [{"metric": label, "value": get(row)} for label, get in SUMMARY_FIELDS]


def summary_markdown(store: Store, run_id: str) -> str:
    """A Markdown summary of one run: a heading, the summary table and how to see more."""
    row = _summary(store, run_id)
    grid = summary_grid([row])
    lines = [f"# proofflow run `{row['name']}`", "", "| metric | value |", "|---|---:|"]
    lines += [f"| {_cell(label)} | {_cell(value)} |" for label, value in grid.rows]
    lines += ["", grid.note, "",
              f"Full report: `proofflow report {row['name']} --db {store.path}`"]
    return "\n".join(lines) + "\n"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")
