"""A run's headline figures: what `proofflow show`, the CLI after a run and the solve
flow's return value display. Built on the v_run_summary view (docs/sql.md)."""

from __future__ import annotations

from typing import Any

from proofflow.storage import metrics
from proofflow.storage.db import StorageError, Store


def run_summary(store: Store, run_id: str) -> dict[str, Any]:
    """v_run_summary's row for the run, plus the number of failed model calls."""
    rows = metrics.run_summary(store, [run_id])
    if not rows:
        raise StorageError(f"no run {run_id!r} in {store.path}")
    summary = dict(rows[0])
    _, ((failed,),) = store.query(
        "SELECT count(*) FROM calls WHERE run_id = ? AND status = 'error'", [run_id]
    )
    summary["failed_calls"] = failed
    return summary


def per_problem(store: Store, run_id: str) -> list[dict[str, Any]]:
    """v_problem_outcomes' rows for the run, in problem-file order."""
    return sorted(metrics.problem_outcomes(store, run_id), key=lambda r: r["position"])
