"""`proofflow serve`: set up, start, stop and inspect the built-in local vLLM server."""

from __future__ import annotations

import time
from dataclasses import replace

import typer
from rich.console import Console

from proofflow.config import DEFAULT_PORT
from proofflow.llm import server

_console = Console()


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)


def serve(
    setup_only: bool = typer.Option(False, "--setup-only", help="Create the venv and model, do not start."),
    stop: bool = typer.Option(False, "--stop", help="Stop the server started on --port."),
    show_status: bool = typer.Option(False, "--status", help="Show whether the server on --port runs."),
    port: int | None = typer.Option(None, help=f"Port (default $PROOFFLOW_SERVER_PORT or {DEFAULT_PORT})."),
    host: str | None = typer.Option(None, help="Interface to bind (default 127.0.0.1)."),
    timeout: float | None = typer.Option(None, help="Seconds to wait for the server to answer."),
) -> None:
    """Run the local CPU vLLM server (SmolLM2-135M-Instruct) that proofflow uses by default."""
    cfg = server.LocalServerConfig()
    cfg = replace(cfg, port=port if port is not None else cfg.port, host=host or cfg.host)
    if sum((setup_only, stop, show_status)) > 1:
        raise typer.BadParameter("use at most one of --setup-only, --stop, --status")
    try:
        if stop:
            _do_stop(cfg)
        elif show_status:
            _print_status(server.status(config=cfg))
        else:
            ensure_setup(cfg)
            if not setup_only:
                ensure_started(cfg, timeout)
    except server.ServerError as exc:
        _console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from exc


def ensure_setup(cfg: server.LocalServerConfig) -> None:
    """Set the local server up (venv + model) with a progress spinner; instant when done."""
    if server.is_set_up(cfg):
        _console.print(f"[green]ready[/green]: venv {cfg.venv}, model {cfg.model_path}")
        return
    started = time.monotonic()
    # Setup takes minutes (a 3.4 GB install, then a model conversion): show the step.
    with _console.status("setting up the local model server") as spinner:

        def progress(step: str) -> None:
            elapsed = time.monotonic() - started
            spinner.update(f"[{elapsed:4.0f}s] {step}")
            _console.log(step)

        result = server.setup(cfg, progress=progress)
    _console.print(
        f"[green]set up[/green] in {result.seconds:.0f} s: venv {result.venv_python.parent.parent}, "
        f"model {result.model_dir}"
    )


def ensure_started(cfg: server.LocalServerConfig, timeout: float | None) -> None:
    """Start (or reuse) the local server, printing its base URL and model."""
    before = server.status(config=cfg)
    with _console.status(f"waiting for the vLLM server on {cfg.base_url} (about 40 s)"):
        st = server.start(config=cfg, timeout_s=timeout)
    verb = "already running" if before.running else "started"
    _console.print(f"[green]{verb}[/green]: base URL [bold]{st.base_url}[/bold], model [bold]{st.model}[/bold]")
    _console.print(f"log {st.log_path}; stop with `proofflow serve --stop --port {cfg.port}`")


def _do_stop(cfg: server.LocalServerConfig) -> None:
    if server.stop(config=cfg):
        _console.print(f"stopped the server on port {cfg.port}")
    elif server.status(config=cfg).running:
        _console.print(f"[yellow]the server on port {cfg.port} was not started by proofflow; left running[/yellow]")
    else:
        _console.print(f"no server on port {cfg.port}")


def _print_status(st: server.ServerStatus) -> None:
    state = "[green]running[/green]" if st.running else "[red]not running[/red]"
    _console.print(f"{state}  base_url={st.base_url}  model={st.model}  pid={st.pid}  log={st.log_path}")
    if not st.running:
        raise typer.Exit(1)
