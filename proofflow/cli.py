"""The `proofflow` command line. Commands from each area register themselves here."""

from __future__ import annotations

import importlib

import typer

app = typer.Typer(
    name="proofflow",
    help="Resumable math solving and theorem proving pipelines over vLLM, stored in DuckDB.",
    no_args_is_help=True,
    add_completion=False,
)

# Each module exposes `register(app)`; a module that is not there yet is skipped so that
# the areas can land independently.
_COMMAND_MODULES = (
    "proofflow.commands.solve",      # solve, runs, show, demo
    "proofflow.commands.serve",      # serve (local vLLM server)
    "proofflow.commands.prove",      # prove (formal pipelines)
    "proofflow.commands.report",     # report, export, sql
)

for _name in _COMMAND_MODULES:
    try:
        _module = importlib.import_module(_name)
    except ModuleNotFoundError as exc:
        if exc.name != _name:
            raise
        continue
    _module.register(app)


if __name__ == "__main__":
    app()
