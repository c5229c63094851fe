"""`proofflow report`, `proofflow export` and `proofflow sql`: reading a database, also
while a run is writing to it (every read opens the file read-only between the run's
flushes; see docs/sql.md)."""

from __future__ import annotations

import csv
import json
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from proofflow.commands.common import make_console
from proofflow.config import default_db_path

# The report's modules (matplotlib, DuckDB) are imported by the commands that use them:
# `proofflow --help` and every other command would pay ~1 s for them (issue 19.3).
if TYPE_CHECKING:
    from proofflow.storage.db import Store

console = make_console()
err = make_console(stderr=True)

DB_HELP = "DuckDB file [default: $PROOFFLOW_DB_PATH or ./proofflow.duckdb]"


def _db(path: Path | None) -> Path:
    return path or default_db_path()


def _open(path: Path | None) -> Store:
    from proofflow.storage.db import Store

    db = _db(path)
    if not db.exists():
        err.print(f"[red]no database at {db}[/red] (run `proofflow solve` first, or pass --db)")
        raise typer.Exit(1)
    return Store(db)


def _fail(exc: Exception) -> typer.Exit:
    err.print(f"[red]error:[/red] {exc}", soft_wrap=True)  # one line, whatever the width
    return typer.Exit(1)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_") or "run"


def report(
    runs: list[str] = typer.Argument(..., help="Run names or ids; several are shown side by side"),
    db: Path | None = typer.Option(None, help=DB_HELP),
    out: Path | None = typer.Option(None, help="Folder for report.md and the PNGs "
                                                  "[default: ./reports/<run>]"),
    problems: int = typer.Option(30, help="Problems listed per run in the terminal (all in report.md)"),
    conversation: list[str] | None = typer.Option(
        None, "--conversation", help="agent runs: put this problem's conversations in report.md (its id in the "
        "problem file; or solved / unsolved / all, up to --conversation-cap problems each); repeatable"),
    conversation_cap: int = typer.Option(5, min=1, help="problems per solved / unsolved / all in --conversation"),
) -> None:
    """Print a run's tables and write report.md with plots (pass@k, cost-of-pass, tokens)."""
    from proofflow.report.markdown import write_report
    from proofflow.report.tables import all_grids, collect, rich_table
    from proofflow.storage import metrics
    from proofflow.storage.db import StorageError

    store = _open(db)
    try:
        metrics.ensure_views(store)
        run_ids = metrics.resolve_runs(store, runs)
        data = collect(store, run_ids, conversations=conversation or (), conversation_cap=conversation_cap)
    except StorageError as exc:
        raise _fail(exc) from exc
    for grid in all_grids(data, problem_limit=problems):
        console.print(rich_table(grid))
        console.print()
    folder = out or Path("reports") / "_vs_".join(_slug(data.name(r)) for r in run_ids)
    files = write_report(data, folder)
    console.print(f"report: {files.markdown}")
    for path in files.plots.values():
        console.print(f"plot:   {path}")
    if data.conversations:
        console.print(f"conversations: {len(data.conversations)} in {files.markdown}")


def export(
    run: str = typer.Argument(..., help="Run name or id"),
    file_format: str = typer.Option("parquet", "--format", "-f", help="parquet or csv"),
    db: Path | None = typer.Option(None, help=DB_HELP),
    out: Path | None = typer.Option(None, help="Folder [default: ./exports/<run>]"),
) -> None:
    """Write a run's rows, one file per table (runs, problems, samples, verdicts, …)."""
    from proofflow.storage import metrics
    from proofflow.storage.db import StorageError
    from proofflow.storage.export import FORMATS, export_runs

    if file_format not in FORMATS:
        raise _fail(ValueError(f"--format must be one of {', '.join(FORMATS)}, not {file_format!r}"))
    store = _open(db)
    try:
        metrics.ensure_views(store)
        [run_id] = metrics.resolve_runs(store, [run])
        folder = out or Path("exports") / _slug(run)
        tables = export_runs(store, [run_id], folder, file_format)
    except StorageError as exc:
        raise _fail(exc) from exc
    for t in tables:
        console.print(f"{t.table:<13} {t.rows:>8,} rows  {t.path}")


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and value != value:  # NaN is not JSON
        return None
    if isinstance(value, float) and value in (float("inf"), float("-inf")):
        return "inf" if value > 0 else "-inf"  # JSON has no infinity (cost-of-pass uses it)
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return str(value)  # timestamps, decimals, UUIDs


def sql(
    query: str = typer.Argument(..., help="SQL to run read-only, e.g. \"SELECT * FROM v_run_summary\""),
    db: Path | None = typer.Option(None, help=DB_HELP),
    as_csv: bool = typer.Option(False, "--csv", help="Print CSV instead of a table"),
    as_json: bool = typer.Option(False, "--json", help="Print JSON (a list of objects)"),
    limit: int = typer.Option(200, help="Rows shown in the table view (CSV/JSON print all)"),
    timeout: float | None = typer.Option(
        None, help="Stop the query after this many seconds \\[default: storage.sql_timeout_s, 60]"),
    memory_mb: int | None = typer.Option(
        None, help="Memory the query may use, in MB \\[default: storage.sql_memory_mb, 2048]"),
    config: Path | None = typer.Option(None, help="TOML config file (\\[storage] section)"),
) -> None:
    """Run SQL on the database read-only (safe while a run is writing to it), bounded in
    time and memory; a query past either bound, or Ctrl-C, ends with one line."""
    if as_csv and as_json:
        raise _fail(ValueError("choose one of --csv and --json"))
    from proofflow.commands.common import settings_or_exit
    from proofflow.report import display
    from proofflow.storage import metrics
    from proofflow.storage.db import StorageError

    bounds = settings_or_exit(config, {"storage.sql_timeout_s": timeout,
                                       "storage.sql_memory_mb": memory_mb}).storage
    try:
        store = _open(db)
        metrics.ensure_views(store)
        cols, rows = store.user_query(query, memory_mb=bounds.sql_memory_mb, timeout_s=bounds.sql_timeout_s)
    except StorageError as exc:
        raise _fail(exc) from exc
    except KeyboardInterrupt:
        err.print("[yellow]interrupted[/yellow] (Ctrl-C): the query was stopped; nothing was changed",
                  soft_wrap=True)
        raise typer.Exit(130) from None
    if as_csv:
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(cols)
        writer.writerows([["" if v is None else v for v in r] for r in rows])
        return
    if as_json:
        sys.stdout.write(json.dumps([dict(zip(cols, map(_jsonable, r))) for r in rows],
                                    indent=2, ensure_ascii=False) + "\n")
        return
    from rich.table import Table

    noun = "row" if len(rows) == 1 else "rows"
    table = Table(caption=(f"{len(rows)} {noun}" if len(rows) <= limit
                           else f"first {limit} of {len(rows)} rows (--limit, --csv or --json for more)"),
                  caption_justify="left")
    for i, c in enumerate(cols):
        values = [r[i] for r in rows[:limit] if r[i] is not None]
        numeric = bool(values) and all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                       for v in values)
        table.add_column(c, overflow="fold", justify="right" if numeric else "left")
    for r in rows[:limit]:
        table.add_row(*[display.plain(v) for v in r])
    console.print(table)


def register(app: typer.Typer) -> None:
    app.command()(report)
    app.command()(export)
    app.command()(sql)
