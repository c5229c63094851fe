"""What the run commands share: a quiet Prefect, settings errors as exit codes, and a
progress bar fed by the flows' progress events."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

console = Console()


def quiet_prefect() -> None:
    # The CLI draws its own progress bar; Prefect's per-task INFO lines would bury it.
    # They still reach the Prefect UI.
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    # No network here or on many GPU nodes: telemetry would only log failures.
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")


def settings_or_exit(config: Path | None, overrides: dict[str, Any]):  # -> Settings
    from proofflow.config import load_settings

    try:
        return load_settings(config, overrides)
    except ValueError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None


def user_errors() -> tuple[type[BaseException], ...]:
    """Errors that are the input's or the environment's fault: a message, not a traceback."""
    from proofflow.flows.common import RunConfigMismatch
    from proofflow.llm.client import EndpointError
    from proofflow.problems import ProblemFileError
    from proofflow.storage.db import StorageError

    return (ProblemFileError, RunConfigMismatch, EndpointError, StorageError)


def run_with_progress(
    title: str, counted: str, run: Callable[[], dict[str, Any]],
    extra_errors: tuple[type[BaseException], ...] = (),
) -> dict[str, Any]:
    """Run a flow under a progress bar (problems done / total, `counted` so far)."""
    from proofflow.flows import progress as flow_progress

    with Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
        TextColumn(counted + " {task.fields[solved]}"), TimeElapsedColumn(), console=console,
    ) as bar:
        task_id = bar.add_task(title, total=None, solved=0)

        def on_progress(p: flow_progress.Progress) -> None:
            bar.update(task_id, total=p.total, completed=p.done, solved=p.solved)

        unsubscribe = flow_progress.subscribe(on_progress)
        try:
            return run()
        except user_errors() + extra_errors as exc:
            bar.stop()
            console.print(f"[red]error:[/red] {exc}")
            console.print("Everything stored before the error is kept; rerun the same command to resume.")
            raise typer.Exit(1) from None
        finally:
            unsubscribe()
