"""What the run commands share: Prefect's logs sent to the API and a log file but kept off
the terminal, a temporary Prefect server that dies with the CLI, settings errors as exit
codes, a progress bar fed by the flows' progress events, and one clear message when a run
fails (what failed, where the full log is, how to resume)."""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shlex
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import typer
from rich.console import Console
from rich.markup import escape
from typer.core import TyperCommand, TyperOption

if TYPE_CHECKING:
    from typer._click import Context, HelpFormatter  # typer's own (vendored) click

    from proofflow.config import Settings
    from proofflow.flows.session import RunSpec

# Wider than any table we print: pipes and files get full names (issue 11.8).
UNLIMITED_WIDTH = 10_000


def make_console(stderr: bool = False) -> Console:
    """A console that cuts tables to the terminal's width only where there is a terminal:
    rich assumes 80 columns for pipes and files, which cut names to "example…"."""
    stream = sys.stderr if stderr else sys.stdout
    interactive = stream.isatty() or "COLUMNS" in os.environ
    return Console(stderr=stderr, width=None if interactive else UNLIMITED_WIDTH)


console = make_console()

# Prefect's handlers (its logging.yml) by name, overridable per key through the environment.
# The terminal shows the progress bar and proofflow's own messages only; Prefect's INFO
# lines and its tracebacks go to the API (the Prefect UI) and to the run's log file.
_QUIET_TERMINAL = {
    "PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL": "CRITICAL",
    "PREFECT_LOGGING_HANDLERS_DEBUG_LEVEL": "CRITICAL",  # prefect._internal, on stderr
    # proofflow's own loggers (model-call retries, a stalled server, a resumed lease) get
    # Prefect's API handler too, so the UI shows them in the run's logs...
    "PREFECT_LOGGING_EXTRA_LOGGERS": "proofflow",
    # ...and a line logged outside a flow or task run (a helper thread) stays local
    # instead of warning about the missing run id.
    "PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW": "ignore",
}
LOG_FORMAT = "%(asctime)s | %(levelname)-7s | %(name)s - %(message)s"


class _State:
    db_path: Path | None = None
    flow_run_id: str | None = None


def quiet_prefect() -> None:
    """Call first in a run command, before Prefect is imported: its logging is configured
    when it is imported. Sends INFO logs (run start/resume counts, retries, stage
    summaries) to the API but none to the terminal, and starts a temporary Prefect server
    that dies with this process when no Prefect API is configured."""
    for key, value in _QUIET_TERMINAL.items():
        os.environ.setdefault(key, value)
    # No network here or on many GPU nodes: telemetry would only log failures.
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    from proofflow.commands import local_prefect

    if not local_prefect.api_configured():
        local_prefect.start()


# `--strategy`'s help lists every registered strategy with its line. Loading them all
# imports every strategy's module (some import the model client: seconds), so the list
# is filled in only when a command's help is shown, not on every start (issue 19.3).
STRATEGIES_PLACEHOLDER = "<registered strategies>"


def strategy_help_command(kind: Literal["answer", "proof"]) -> type[TyperCommand]:
    """A command class whose `--strategy` help gets the registry's list (`kind`'s
    strategies) when the help is formatted."""

    class StrategyHelpCommand(TyperCommand):
        def format_help(self, ctx: Context, formatter: HelpFormatter) -> None:
            from proofflow.strategies.registry import help_text

            for param in self.params:
                if param.name == "strategy" and isinstance(param, TyperOption) and param.help:
                    param.help = param.help.replace(STRATEGIES_PLACEHOLDER, escape(help_text(kind)))
            super().format_help(ctx, formatter)

    return StrategyHelpCommand


def settings_or_exit(config: Path | None, overrides: dict[str, Any]) -> Settings:
    from proofflow.config import load_settings

    try:
        settings = load_settings(config, overrides)
    except ValueError as exc:
        for line in str(exc).splitlines() or [type(exc).__name__]:  # one line per bad key
            console.print(f"[red]error:[/red] {escape(line)}", highlight=False)
        raise typer.Exit(2) from None
    _State.db_path = Path(settings.storage.db_path)
    return settings


def storage_or_exit(settings: Settings) -> None:
    """Before anything is created (no database, no -logs folder, no lock, no model call):
    a database path that cannot hold a database (a directory, a read-only folder) and an
    existing database that fails its checks (opened read-only, so it is not modified) are
    one line and exit code 1, with no offer to resume."""
    from proofflow.storage.db import StorageError, Store
    from proofflow.storage.paths import check_db_location

    path = Path(settings.storage.db_path)
    try:
        check_db_location(path)
        Store(path, lock_timeout_s=settings.storage.lock_timeout_s).check_intact()
    except StorageError as exc:
        console.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False)
        raise typer.Exit(1) from None


class _Notes(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        console.print(f"[yellow]note:[/yellow] {escape(record.getMessage())}", highlight=False)


@contextlib.contextmanager
def problem_notes() -> Iterator[None]:
    """What the problem loaders warn about while a run is resolved (--dedupe: how many
    lines were dropped) is said on the terminal, once."""
    logger, handler = logging.getLogger("proofflow.problems"), _Notes(logging.WARNING)
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)


def answer_if_finished(spec: RunSpec) -> dict[str, Any] | None:
    """A finished run's figures from the store (flows/session.py `finished_summary`),
    said as such: resuming it has nothing to do, so no Prefect, no flow run, no log
    file. None: the flow runs. A changed identity is one line and exit code 1, as the
    flow's refusal is."""
    from proofflow.flows.session import finished_summary

    try:
        summary = finished_summary(spec)
    except user_errors() as exc:
        console.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False)
        raise typer.Exit(1) from None
    if summary is not None:
        console.print(f"run {escape(spec.name)}: all {len(spec.problems)} problems are done; nothing to do",
                      highlight=False)
    return summary


def user_errors() -> tuple[type[BaseException], ...]:
    """Errors that are the input's or the environment's fault: a message, not a traceback."""
    from proofflow.flows.common import RunConfigMismatch
    from proofflow.llm.client import EndpointError
    from proofflow.problems import ProblemFileError
    from proofflow.storage.db import StorageError

    return (ProblemFileError, RunConfigMismatch, EndpointError, StorageError)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-")[:80] or "run"


def log_path(title: str) -> Path:
    """<db folder>/<db name>-logs/<UTC time>-<title>.log: beside the data it explains."""
    from proofflow.config import default_db_path

    db = _State.db_path or default_db_path()
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return db.parent / f"{db.stem}-logs" / f"{stamp}-{_slug(title)}.log"


class _StoppingFileHandler(logging.FileHandler):
    """A log file that stops at its first write error (a full disk) and remembers it,
    instead of printing `--- Logging error ---` and a traceback for every later record
    (17,199 of them on a full disk, then a RecursionError: issue 20.9)."""

    failed: BaseException | None = None

    def emit(self, record: logging.LogRecord) -> None:
        if self.failed is None:
            super().emit(record)

    def handleError(self, record: logging.LogRecord) -> None:
        if self.failed is None:
            self.failed = sys.exc_info()[1] or OSError("cannot write the log file")
            self._drop_stream()

    def _drop_stream(self) -> None:
        stream, self.stream = self.stream, None
        if stream is not None:
            try:
                stream.close()  # flushes what failed once more; the file is closed anyway
            except OSError:
                pass

    def close(self) -> None:
        try:
            super().close()
        except OSError as exc:
            if self.failed is None:
                self.failed = exc
            self._drop_stream()


class _RunLog:
    """Every log record of this process at INFO and above (Prefect's flow and task logs
    with their tracebacks included) into one file; remembers the flow run's id."""

    def __init__(self, path: Path) -> None:
        from prefect.logging.formatters import PrefectFormatter

        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.handler = _StoppingFileHandler(path, encoding="utf-8", delay=True)
        self.handler.setLevel(logging.INFO)
        self.handler.setFormatter(PrefectFormatter(
            LOG_FORMAT, flow_run_fmt="%(asctime)s | %(levelname)-7s | Flow run %(flow_run_name)r - %(message)s",
            task_run_fmt="%(asctime)s | %(levelname)-7s | Task run %(task_run_name)r - %(message)s"))
        self.handler.addFilter(self._note_flow_run)
        # The root logger receives what Prefect's loggers propagate; prefect._internal
        # does not propagate (it has its own stderr handler, silenced above).
        self.loggers = [logging.getLogger(), logging.getLogger("prefect._internal")]

    @staticmethod
    def _note_flow_run(record: logging.LogRecord) -> bool:
        flow_run_id = getattr(record, "flow_run_id", None)  # set by Prefect's run loggers
        if _State.flow_run_id is None and flow_run_id:
            _State.flow_run_id = str(flow_run_id)
        return True

    def __enter__(self) -> _RunLog:
        for logger in self.loggers:
            logger.addHandler(self.handler)
        # proofflow's INFO lines (a stalled server answering again, ...) reach the file
        # and the API; the terminal's handler is at CRITICAL.
        logging.getLogger("proofflow").setLevel(logging.INFO)
        return self

    def __exit__(self, *exc: object) -> None:
        for logger in self.loggers:
            logger.removeHandler(self.handler)
        self.handler.close()


def _where_to_look(log: Path, resumable: bool = True, log_failed: BaseException | None = None) -> None:
    if log_failed is None:
        console.print(f"Full log: {log}")
    else:
        reason = getattr(log_failed, "strerror", None) or log_failed
        console.print(escape(f"Log (incomplete, writing it failed: {reason}): {log}"), highlight=False)
    from proofflow.commands import local_prefect

    if _State.flow_run_id and local_prefect.current() is None:
        from prefect.settings import get_current_settings

        ui = get_current_settings().ui_url
        if ui:
            console.print(f"Prefect UI: {ui}/runs/flow-run/{_State.flow_run_id}")
    if not resumable:  # a corrupt database, a path that cannot hold one: resuming cannot help
        return
    command = shlex.join(["proofflow", *sys.argv[1:]])
    console.print(f"Everything stored before the error is kept; to resume, run the same command:\n  {command}")


def run_with_progress(
    title: str, counted: str, run: Callable[[], dict[str, Any]],
    extra_errors: tuple[type[BaseException], ...] = (),
) -> dict[str, Any]:
    """Run a flow under a progress bar (problems done / total, `counted` so far). A failure
    is one message on the terminal; its traceback is in the log file it names."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from proofflow.commands import local_prefect
    from proofflow.flows import progress as flow_progress

    server = local_prefect.current()
    if server is not None:
        try:
            server.wait_ready()
        except local_prefect.LocalServerError as exc:
            console.print(f"[red]error:[/red] {exc}")
            raise typer.Exit(1) from None

    try:
        log = _RunLog(log_path(title))
    except OSError as exc:  # the -logs folder cannot be made: nothing has been written yet
        from proofflow.storage.errors import disk_full, no_space

        path = log_path(title).parent
        text = str(disk_full(_State.db_path or path)) if no_space(exc) else \
            f"cannot create the log folder {path}: {exc.strerror or exc}"
        console.print(f"[red]error:[/red] {escape(text)}", highlight=False)
        raise typer.Exit(1) from None
    with log, Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
        TextColumn(counted + " {task.fields[solved]}"), TimeElapsedColumn(), console=console,
    ) as bar:
        task_id = bar.add_task(title, total=None, solved=0)

        def on_progress(p: flow_progress.Progress) -> None:
            bar.update(task_id, total=p.total, completed=p.done, solved=p.solved)

        def on_stall(stall: Any) -> None:
            # A model server that stops answering (llm/stall.py Stall): said above the bar.
            bar.console.print(f"[yellow]model server:[/yellow] {stall.message()}")

        def fail(exc: BaseException, text: str) -> typer.Exit:
            """One line for the failure (a full disk named once, wherever it surfaced),
            then where to look and, if it can help, how to resume."""
            from proofflow.storage.errors import disk_full, no_space

            resumable = bool(getattr(exc, "resumable", True))
            if no_space(exc) or no_space(log.handler.failed):
                text = str(disk_full(_State.db_path or log.path))
            bar.stop()
            console.print(f"[red]error:[/red] {escape(text)}", highlight=False)
            _where_to_look(log.path, resumable, log.handler.failed)
            return typer.Exit(1)

        unsubscribe = flow_progress.subscribe(on_progress)
        unsubscribe_stalls = flow_progress.subscribe_stalls(on_stall)
        try:
            return run()
        except user_errors() + extra_errors as exc:
            logging.getLogger("proofflow.cli").error("%s failed: %s", title, exc, exc_info=True)
            raise fail(exc, str(exc)) from None
        except KeyboardInterrupt:
            logging.getLogger("proofflow.cli").warning("%s interrupted", title)
            bar.stop()
            console.print("[yellow]interrupted[/yellow]")
            _where_to_look(log.path, True, log.handler.failed)
            raise typer.Exit(130) from None
        except Exception as exc:  # not the input's fault: the traceback goes to the log
            logging.getLogger("proofflow.cli").exception("%s failed", title)
            raise fail(exc, f"{type(exc).__name__}: {exc}") from None
        finally:
            unsubscribe()
            unsubscribe_stalls()
