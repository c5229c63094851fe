"""Read-only queries over the metric views (views.sql), returning plain rows.

Every function here returns `list[dict]` (column name -> Python value) so that the report
package renders them without touching DuckDB. Runs are named by id or by name; the
functions taking several runs keep the caller's order.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import duckdb

from proofflow.storage.db import StorageError, Store
from proofflow.storage.lease import current_holder

Rows = list[dict[str, Any]]


def _rows(store: Store, sql: str, params: dict[str, Any]) -> Rows:
    cols, rows = store.query(sql, params)
    return [dict(zip(cols, r)) for r in rows]


def _order(rows: Rows, run_ids: Sequence[str], *more: str) -> Rows:
    """Sort by the caller's run order, then by the given columns."""
    pos = {r: i for i, r in enumerate(run_ids)}
    return sorted(rows, key=lambda r: (pos.get(r["run_id"], len(pos)), *(_sortable(r[c]) for c in more)))


def _view_rows(store: Store, view: str, run_ids: Sequence[str], *order_by: str) -> Rows:
    """Rows of one of our views for the given runs, in the caller's run order.
    `view` is always a name from views.sql, never user input."""
    rows = _rows(store, f"SELECT * FROM {view} WHERE list_contains($runs, run_id)",
                 {"runs": list(run_ids)})
    return _order(rows, run_ids, *order_by)


def _sortable(v: Any) -> tuple[bool, Any]:
    return (v is None, v if v is not None else 0)


def resolve_runs(store: Store, names_or_ids: Sequence[str]) -> list[str]:
    """Run ids for names or ids, in the given order; raises StorageError naming the
    unknown ones (and the known names, to help a typo)."""
    cols, rows = store.query("SELECT run_id, name FROM runs ORDER BY started_at")
    by_key: dict[str, str] = {}
    for run_id, name in rows:
        by_key[run_id] = run_id
        by_key[name] = run_id
    missing = [n for n in names_or_ids if n not in by_key]
    if missing:
        known = ", ".join(name for _, name in rows) or "none"
        raise StorageError(f"unknown run(s): {', '.join(missing)} (runs in {store.path}: {known})")
    return [by_key[n] for n in names_or_ids]


def views_version(store: Store) -> str | None:
    _, rows = store.query("SELECT value FROM schema_info WHERE key = 'views_version'")
    return rows[0][0] if rows else None


def run_summary_rows(store: Store, run_ids: Sequence[str]) -> Rows:
    """v_run_summary's rows for several runs (the report's side-by-side table): solved/total,
    pass@1, pass@N, maj@N, tokens, cost, cost-of-pass. A `running` run whose process no
    longer holds its lease shows as `interrupted` (a view cannot see the lock)."""
    rows = _view_rows(store, "v_run_summary", run_ids)
    for row in rows:
        if row.get("status") == "running" and current_holder(store.path, row["run_id"]) is None:
            row["status"] = "interrupted"
    return rows


def problem_outcomes(store: Store, run_id: str) -> Rows:
    return _rows(
        store,
        "SELECT * FROM v_problem_outcomes WHERE run_id = $run "
        "ORDER BY position NULLS LAST, source_id, problem_id",
        {"run": run_id},
    )


def pass_at_k(store: Store, run_ids: Sequence[str], stages: Sequence[str] | None = None) -> Rows:
    """pass@k averaged per run, for every k; `stages` picks which samples count
    [default: each run's candidates, as its strategy names them]."""
    rows = _rows(store, "SELECT * FROM pf_pass_at_k_run($stages) WHERE list_contains($runs, run_id)",
                 {"runs": list(run_ids), "stages": list(stages) if stages is not None else None})
    return _order(rows, run_ids, "k")


def pass_at_k_problem(store: Store, run_id: str, stages: Sequence[str] | None = None) -> Rows:
    rows = _rows(store, "SELECT * FROM pf_pass_at_k_problem($stages) WHERE run_id = $run "
                        "ORDER BY problem_id, k",
                 {"run": run_id, "stages": list(stages) if stages is not None else None})
    return rows


def coverage(store: Store, run_ids: Sequence[str]) -> Rows:
    return _view_rows(store, "v_coverage", run_ids, "k")


def maj_at_k(store: Store, run_ids: Sequence[str]) -> Rows:
    return _view_rows(store, "v_maj_at_k", run_ids, "k")


def maj_at_k_problem(store: Store, run_id: str) -> Rows:
    return _rows(store, "SELECT * FROM v_maj_at_k_problem WHERE run_id = $run ORDER BY problem_id, k",
                 {"run": run_id})


def cost_of_pass(store: Store, run_ids: Sequence[str]) -> Rows:
    return _view_rows(store, "v_cost_of_pass", run_ids)


def cost_of_pass_by_model(store: Store, run_ids: Sequence[str]) -> Rows:
    return _view_rows(store, "v_cost_of_pass_by_model", run_ids, "model")


def tokens_of_pass(store: Store, run_ids: Sequence[str]) -> Rows:
    return _view_rows(store, "v_tokens_of_pass", run_ids)


def tokens_of_pass_by_model(store: Store, run_ids: Sequence[str]) -> Rows:
    return _view_rows(store, "v_tokens_of_pass_by_model", run_ids, "model")


def usage(store: Store, run_ids: Sequence[str]) -> Rows:
    """Tokens and cost by (run, stage, model)."""
    return _view_rows(store, "v_usage", run_ids, "stage", "model")


def verifier_agreement(store: Store, run_ids: Sequence[str]) -> Rows:
    return _view_rows(store, "v_verifier_agreement", run_ids, "verifier_a", "verifier_b")


def verifier_audit(store: Store, run_ids: Sequence[str]) -> Rows:
    return _view_rows(store, "v_verifier_audit", run_ids, "verifier")


def verdict_reasons(store: Store, run_ids: Sequence[str]) -> Rows:
    return _view_rows(store, "v_verdict_reasons", run_ids, "verifier", "outcome", "reason")


def episodes(store: Store, run_ids: Sequence[str]) -> Rows:
    """v_episodes: one row per agent episode (turns, tools, tokens, how it ended, solved)."""
    return _view_rows(store, "v_episodes", run_ids, "source_id", "problem_id", "episode")


def agent_summary(store: Store, run_ids: Sequence[str]) -> Rows:
    return _view_rows(store, "v_agent_summary", run_ids)


def token_budget(store: Store, run_ids: Sequence[str]) -> Rows:
    """v_token_budget: problems and episodes the per-problem token budget stopped."""
    return _view_rows(store, "v_token_budget", run_ids)


# The version views.sql records in schema_info; bump both together.
VIEWS_VERSION = "9"


def record_candidate_stages(store: Store, strategy: str, stages: Sequence[str]) -> None:
    """Which stages' samples are the candidates of runs stored with `strategy` (the
    label in runs.strategy), for the views (strategy_candidate_stages). The flow records
    them from the strategy registry when a run starts; storage knows no strategy."""
    with store.connect() as con:
        con.execute("BEGIN")
        con.execute("DELETE FROM strategy_candidate_stages WHERE strategy = ?", [strategy])
        con.executemany("INSERT INTO strategy_candidate_stages VALUES (?, ?)", [(strategy, s) for s in stages])
        con.execute("COMMIT")


def ensure_views(store: Store) -> None:
    """Create or update the views in a database written by an older proofflow.

    Views are (re)created whenever a run opens the file for writing; a file last written
    before they existed gets them here, with one short write open.
    """
    try:
        current = views_version(store)
    except duckdb.Error:
        current = None
    if current != VIEWS_VERSION:
        Store(store.path, lock_timeout_s=store.lock_timeout_s).init()


def sql_query(store: Store, sql: str) -> tuple[list[str], list[tuple[Any, ...]]]:
    """A user's own SQL, read-only and sandboxed to the database's own tables and views
    (Store.user_query); DuckDB's errors come back as StorageError."""
    return store.user_query(sql)
