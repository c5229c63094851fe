"""`proofflow prove`: the formal proving flows (whole-proof or DSP+) with a progress bar
and a results table."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from proofflow.commands.common import (
    STRATEGIES_PLACEHOLDER,
    answer_if_finished,
    console,
    quiet_prefect,
    run_with_progress,
    settings_or_exit,
    storage_or_exit,
    strategy_help_command,
)


def prove(
    problems: str = typer.Argument(...,
        help="JSONL: miniF2F (DeepSeek or yangky11), plain {id, header, statement}, "
             "or 'coq-examples' for the bundled Coq set"),
    backend: str | None = typer.Option(None, help="coq | lean | kimina [default: coq]"),
    strategy: str | None = typer.Option(  # choices and their help: the strategy registry
        None, help=f"{STRATEGIES_PLACEHOLDER} [default: whole]"),
    samples: int | None = typer.Option(None, "--samples", "-n",
        help="whole: proofs per problem; dsp: drafts/sketches [default: 4]"),
    repair_rounds: int | None = typer.Option(None, "--repair-rounds", "-r",
        help="whole: model repair rounds [default: 1]"),
    repair_depth: int | None = typer.Option(None, help="APOLLO-style mask/holes/reassemble rounds [default: 1]"),
    hole_budget: int | None = typer.Option(None, help="model samples per hole automation left open [default: 2]"),
    model: str | None = typer.Option(None, help="served model name"),
    base_url: list[str] | None = typer.Option(None, "--base-url",
        help="OpenAI-compatible base URL; repeat for replicas"),
    max_tokens: int | None = typer.Option(None, help="max completion tokens per sample"),
    temperature: float | None = typer.Option(None),
    limit: int | None = typer.Option(None, help="only the first N problems"),
    problems_in_flight: int | None = typer.Option(None, help="problems worked on at once [default: 2]"),
    runner: str | None = typer.Option(
        None, help="where stage tasks run: threads (this process) | dask | ray [default: threads]"),
    runner_address: str | None = typer.Option(
        None, help="an existing cluster: tcp://host:8786 (dask) or ray://host:10001 (ray) [default: a local one]"),
    runner_workers: int | None = typer.Option(None, help="worker processes of the local dask/ray cluster [default: 2]"),
    workers: int | None = typer.Option(None, help="checker processes [default: 2]"),
    check_timeout: float | None = typer.Option(None, help="seconds per check [default: 20]"),
    lean_project: str | None = typer.Option(None, help="Lean project with Mathlib and the REPL (backend lean)"),
    kimina_url: str | None = typer.Option(None, help="Kimina Lean Server URL (backend kimina)"),
    db: Path | None = typer.Option(None, help="DuckDB file [default: ./proofflow.duckdb]"),
    run: str | None = typer.Option(None, "--run", help="run name; an existing run resumes"),
    wait: bool = typer.Option(False, "--wait", help="another process holds this run: wait for it, then resume"),
    extend: bool = typer.Option(False, "--extend", help="add problems the file gained since the run started"),
    dedupe: bool = typer.Option(False, "--dedupe",
        help="repeated ids or theorem names: keep the first, say how many were dropped [default: refuse the file]"),
    config: Path | None = typer.Option(None, help="TOML config file (\\[prove] section)"),
    name: str | None = typer.Option(
        None, "--name",
        help="the data set's name in labels [default: the file's directory for test/train files, else its stem]"),
) -> None:
    """Prove formal theorems (Coq here; Lean with a configured installation); resumable."""
    overrides = {
        "prove.backend": backend, "prove.strategy": strategy, "prove.samples": samples,
        "prove.repair_rounds": repair_rounds, "prove.repair_depth": repair_depth,
        "prove.hole_budget": hole_budget, "endpoint.model": model, "endpoint.base_urls": base_url,
        "sampling.max_tokens": max_tokens, "sampling.temperature": temperature, "prove.limit": limit,
        "prove.problems_in_flight": problems_in_flight, "prove.workers": workers,
        "prove.check_timeout_s": check_timeout, "prove.lean_project_dir": lean_project,
        "prove.kimina_url": kimina_url, "storage.db_path": str(db) if db else None,
        "storage.wait_for_run": wait or None, "storage.extend_run": extend or None,
        "runner.kind": runner, "runner.address": runner_address, "runner.workers": runner_workers,
        "problems.dedupe": dedupe or None,
    }
    overrides = {k: v for k, v in overrides.items() if v is not None}
    summary = _run_with_progress(problems, run, config, overrides, name)
    _print_results(summary)


def _run_with_progress(problems: str, run: str | None, config: Path | None, overrides: dict[str, Any],
                       problem_set: str | None = None) -> dict[str, Any]:
    """Resolve settings, problems and the run name once ({date} expanded here too), then
    run under a progress bar. A file for another backend or a checker that cannot start
    (no Lean toolchain, no coqtop) is one clear line; anything else keeps its traceback."""
    from proofflow.commands.solve import prepared_or_exit
    from proofflow.flows.prove_spec import ProveSetupError, prepare_prove

    settings = settings_or_exit(config, overrides)
    storage_or_exit(settings)
    spec = prepared_or_exit(lambda: prepare_prove(problems, run, settings=settings, problem_set=problem_set),
                            (ProveSetupError,))
    summary = answer_if_finished(spec)
    if summary is not None:  # a finished run: the flow's no-op resume counts no checks either
        summary.update(checks_run=0, cache_hits=0, cache_misses=0)
    else:
        quiet_prefect()  # before Prefect is imported: its logging is configured then
        from proofflow.flows.prove import run_prepared

        summary = run_with_progress(f"prove {spec.name}", "proved", lambda: run_prepared(spec),
                                    extra_errors=(ProveSetupError,))
    summary["run"] = spec.name
    summary["db"] = str(settings.storage.db_path)
    return summary


def _print_results(summary: dict[str, Any]) -> None:
    from proofflow.storage.db import Store
    from proofflow.storage.summary import proof_status, sample_totals

    store = Store(summary["db"])
    run = store.get_run(summary["run"])
    if run is not None:
        rows = proof_status(store, run.run_id)
        table = Table(title=f"problems of run {summary['run']}")
        for col in ("problem", "status", "proved by / last verdict", "samples", "automation", "tokens"):
            table.add_column(col, overflow="fold")
        for source_id, solved, proved_by, last, n, auto, tokens in rows:
            status = "[green]proved[/green]" if solved else "pending" if solved is None else "[red]open[/red]"
            table.add_row(source_id, status, proved_by if solved else (last or "no verdict"),
                          str(n or 0), str(auto or 0), str(tokens or 0))
        console.print(table)
    totals = {"samples": 0, "prompt_tokens": None, "completion_tokens": None, "model_calls": None}
    if run is not None:
        totals.update(sample_totals(store, run.run_id))
    table = Table(title=f"run {summary.get('run')}  ({summary.get('db')})")
    for col in ("problems", "proved", "samples", "model calls", "prompt tok", "completion tok",
                "checks run", "cache hits"):
        table.add_column(col, justify="right")
    table.add_row(str(summary.get("problems")), str(summary.get("solved")),
                  *(str(totals[k] if totals[k] is not None else 0) for k in
                    ("samples", "model_calls", "prompt_tokens", "completion_tokens")),
                  str(summary.get("checks_run", "n/a")), str(summary.get("cache_hits", "n/a")))
    console.print(table)


def register(app: typer.Typer) -> None:
    app.command(cls=strategy_help_command("proof"))(prove)
