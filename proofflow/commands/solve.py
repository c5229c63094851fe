"""`proofflow solve | runs | show | demo`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer
from rich.markup import escape
from rich.table import Table

from proofflow.commands.common import (
    STRATEGIES_PLACEHOLDER,
    answer_if_finished,
    console,
    problem_notes,
    quiet_prefect,
    run_with_progress,
    settings_or_exit,
    storage_or_exit,
    strategy_help_command,
    user_errors,
)
from proofflow.config import DEFAULT_PORT, default_db_path


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _default_db() -> Path:
    return default_db_path()


def solve(
    problems: Path = typer.Argument(..., help="JSONL problem file (plain, GSM8K or MATH-500 format)"),
    model: str | None = typer.Option(None, help="served model name [default: smollm2-135m-instruct]"),
    base_url: list[str] | None = typer.Option(None, "--base-url",
        help="OpenAI-compatible base URL; repeat for replicas"),
    samples: int | None = typer.Option(None, "--samples", "-n", help="candidates per problem [default: 4]"),
    repair_rounds: int | None = typer.Option(None, "--repair-rounds", "-r", help="repair rounds [default: 1]"),
    strategy: str | None = typer.Option(  # choices and their help: the strategy registry
        None, help=f"{STRATEGIES_PLACEHOLDER} [default: gvr]"),
    selection: str | None = typer.Option(None, help="majority | weighted (by self-verification)"),
    max_tokens: int | None = typer.Option(None, help="max completion tokens per sample [default: 512]"),
    max_tokens_per_problem: int | None = typer.Option(
        None, help="gvr/pot/csv: a problem's token budget (all its samples); reached, no more repairs [default: none]"),
    temperature: float | None = typer.Option(None),
    top_p: float | None = typer.Option(None),
    limit: int | None = typer.Option(None, help="only the first N problems"),
    problems_in_flight: int | None = typer.Option(None, help="problems worked on at once [default: 4]"),
    runner: str | None = typer.Option(
        None, help="where stage tasks run: threads (this process) | dask | ray [default: threads]"),
    runner_address: str | None = typer.Option(
        None, help="an existing cluster: tcp://host:8786 (dask) or ray://host:10001 (ray) [default: a local one]"),
    runner_workers: int | None = typer.Option(None, help="worker processes of the local dask/ray cluster [default: 2]"),
    price_in: float | None = typer.Option(None, help="$ per 1M prompt tokens"),
    price_out: float | None = typer.Option(None, help="$ per 1M completion tokens"),
    gpu_hour: float | None = typer.Option(None, help="$ per GPU-hour (instead of token prices)"),
    db: Path | None = typer.Option(None, help="DuckDB file [default: ./proofflow.duckdb]"),
    run: str | None = typer.Option(None, "--run",
        help="run name; an existing run resumes [default: derived from file, model, n, r]"),
    wait: bool = typer.Option(False, "--wait", help="another process holds this run: wait for it, then resume"),
    extend: bool = typer.Option(False, "--extend", help="add problems the file gained since the run started"),
    dedupe: bool = typer.Option(False, "--dedupe",
        help="repeated ids or problems: keep the first, say how many were dropped [default: refuse the file]"),
    config: Path | None = typer.Option(None, help="TOML config file (see docs/configuration.md)"),
    name: str | None = typer.Option(
        None, "--name",
        help="the data set's name in labels [default: the file's directory for test/train files, else its stem]"),
) -> None:
    """Sample, verify, repair and select answers for a problem file; resumable."""
    overrides = {
        "endpoint.model": model, "endpoint.base_urls": base_url, "solve.samples": samples,
        "solve.repair_rounds": repair_rounds, "sampling.max_tokens": max_tokens,
        "solve.max_tokens_per_problem": max_tokens_per_problem,
        "solve.strategy": strategy, "solve.selection": selection,
        "sampling.temperature": temperature, "sampling.top_p": top_p, "solve.limit": limit,
        "solve.problems_in_flight": problems_in_flight, "endpoint.price.input_per_mtok": price_in,
        "endpoint.price.output_per_mtok": price_out, "endpoint.price.gpu_hour": gpu_hour,
        "storage.db_path": str(db) if db else None,
        "storage.wait_for_run": wait or None, "storage.extend_run": extend or None,
        "runner.kind": runner, "runner.address": runner_address, "runner.workers": runner_workers,
        "problems.dedupe": dedupe or None,
    }
    overrides = {k: v for k, v in overrides.items() if v is not None}
    summary = _run_with_progress(problems, run, config, overrides, name)
    _print_summary(summary)


def _run_with_progress(problems: Path, run: str | None, config: Path | None, overrides: dict[str, Any],
                       problem_set: str | None = None) -> dict[str, Any]:
    """Resolve settings, problems and the run name once; a finished run is answered from
    the store (no Prefect at all), anything else runs under a progress bar."""
    from proofflow.flows.solve_spec import prepare_solve

    settings = settings_or_exit(config, overrides)
    storage_or_exit(settings)
    spec = prepared_or_exit(lambda: prepare_solve(str(problems), run, settings=settings, problem_set=problem_set))
    summary = answer_if_finished(spec)
    if summary is None:
        quiet_prefect()  # before Prefect is imported: its logging is configured then
        from proofflow.flows.solve import run_prepared

        summary = run_with_progress(f"run {spec.name}", "solved", lambda: run_prepared(spec))
    summary["run"] = spec.name
    summary["db"] = str(settings.storage.db_path)
    return summary


def prepared_or_exit(prepare: Callable[[], Any], extra_errors: tuple[type[BaseException], ...] = ()) -> Any:
    """A run resolved before Prefect starts: a bad problem file is one clear line; what
    the loaders say about it (--dedupe: how many lines were dropped) is a note."""
    with problem_notes():
        try:
            return prepare()
        except user_errors() + extra_errors as exc:
            console.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False)
            raise typer.Exit(1) from None


def _print_summary(summary: dict[str, Any]) -> None:
    table = Table(title=f"run {summary.get('run')}  ({summary.get('db')})")
    for col in ("problems", "solved", "maj correct", "pass@1", f"pass@{summary.get('n')}",
                "samples", "prompt tok", "completion tok", "cost $", "failed calls"):
        table.add_column(col, justify="right")
    table.add_row(
        _fmt(summary["problems"]), _fmt(summary["solved"]), _fmt(summary["correct"]),
        _fmt(summary["pass_at_1"]), _fmt(summary["pass_at_n"]), _fmt(summary["samples"]),
        _fmt(summary["prompt_tokens"]), _fmt(summary["completion_tokens"]),
        _fmt(summary["cost"], 6), _fmt(summary["failed_calls"]),
    )
    console.print(table)


def runs(db: Path | None = typer.Option(None, help="DuckDB file [default: ./proofflow.duckdb]")) -> None:
    """List the runs stored in the database."""
    from proofflow.storage.db import StorageError, Store

    try:
        rows = Store(db or _default_db()).list_runs()
    except StorageError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from None
    table = Table(title=f"runs in {db or _default_db()}")
    for col in ("name", "strategy", "problem set", "model", "status", "started", "finished"):
        table.add_column(col)
    for r in rows:
        table.add_row(r.name, r.strategy, r.problem_set or "", r.model or "", r.status,
                      str(r.started_at)[:19], str(r.finished_at or "")[:19])
    console.print(table)


def show(
    run: str = typer.Argument(..., help="run name or id"),
    db: Path | None = typer.Option(None, help="DuckDB file [default: ./proofflow.duckdb]"),
    problems: bool = typer.Option(True, help="also list every problem"),
    problem: str | None = typer.Option(None, "--problem", help="one problem (its id in the problem file)"),
    conversation: bool = typer.Option(
        False, "--conversation", help="with --problem: print its agent conversations as rebuilt from the database"),
) -> None:
    """Solved / total, pass@1, pass@N, tokens and cost of a run, per problem and in total."""
    from proofflow.storage.db import StorageError, Store
    from proofflow.storage.summary import per_problem, run_headline

    store = Store(db or _default_db())
    try:
        record = store.get_run(run)
    except StorageError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from None
    if record is None:
        console.print(f"[red]error:[/red] no run named {run!r} in {store.path}")
        raise typer.Exit(1)
    if conversation:
        _show_conversation(store, record.run_id, problem)
        return
    if problems:
        table = Table(title=f"problems of run {record.name}")
        for col in ("problem", "samples", "passed", "selected answer", "reference", "correct",
                    "tokens", "cost $"):
            table.add_column(col, overflow="fold")
        for row in per_problem(store, record.run_id):
            table.add_row(
                row["source_id"], _fmt(row["samples"]), _fmt(row["passed"]),
                _fmt(row["selected_answer"]), row["reference_answer"] or "",
                {True: "[green]yes[/green]", False: "[red]no[/red]"}.get(row["correct"], "pending"),
                _fmt(row["prompt_tokens"] + row["completion_tokens"]), _fmt(row["cost"], 6),
            )
        console.print(table)
    summary = run_headline(store, record.run_id)
    summary["run"] = record.name
    summary["db"] = str(store.path)
    _print_summary(summary)


def _show_conversation(store: Any, run_id: str, problem: str | None) -> None:
    """An agent run's conversations of one problem (agents/transcript.py)."""
    from proofflow.agents.transcript import render
    from proofflow.storage.conversations import problem_conversations
    from proofflow.storage.db import StorageError

    if not problem:
        console.print("[red]error:[/red] --conversation needs --problem ID")
        raise typer.Exit(2)
    try:
        data = problem_conversations(store, run_id, problem)
    except StorageError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from None
    if not data.episode_numbers:
        console.print(f"problem {problem}: no conversation stored (not an agent run, or not started)")
        return
    console.print(render(data, run_id), markup=False, highlight=False)


def demo(
    port: int = typer.Option(DEFAULT_PORT, help="port of the local vLLM server"),
    samples: int = typer.Option(4, "--samples", "-n"),
    repair_rounds: int = typer.Option(1, "--repair-rounds", "-r"),
    max_tokens: int = typer.Option(256, help="a CPU model writes ~100 tokens/s in all; keep the demo short"),
    problems_in_flight: int = typer.Option(8, help="more in flight = bigger batches on the server"),
    db: Path | None = typer.Option(None, help="DuckDB file [default: $PROOFFLOW_DB_PATH or ./proofflow.duckdb]"),
) -> None:
    """Set up and start the local vLLM server, solve the bundled examples, show results."""
    from dataclasses import replace

    db = db or default_db_path()

    from proofflow.commands.serve import ensure_setup, ensure_started
    from proofflow.llm import server
    from proofflow.problems import example_path

    quiet_prefect()
    cfg = replace(server.LocalServerConfig(), port=port)
    try:
        ensure_setup(cfg)
        ensure_started(cfg, None)
    except server.ServerError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from None
    status = server.status(config=cfg)
    overrides = {
        "endpoint.model": status.model, "endpoint.base_urls": [status.base_url],
        "solve.samples": samples, "solve.repair_rounds": repair_rounds, "storage.db_path": str(db),
        "sampling.max_tokens": max_tokens, "solve.problems_in_flight": problems_in_flight,
    }
    summary = _run_with_progress(example_path(), None, None, overrides)
    show(summary["run"], db=db, problems=True, problem=None, conversation=False)
    console.print(f"\nStored in {db}. Try: proofflow sql \"SELECT stage, count(*), sum(completion_tokens) "
                  "FROM samples GROUP BY stage\"")


def register(app: typer.Typer) -> None:
    app.command(cls=strategy_help_command("answer"))(solve)
    app.command()(runs)
    app.command()(show)
    app.command()(demo)
