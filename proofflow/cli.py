"""The `proofflow` command line. Commands from each area register themselves here."""

from __future__ import annotations

import typer

from proofflow.commands import check, deploy, prove, report, serve, solve

app = typer.Typer(
    name="proofflow",
    help="Resumable math solving and theorem proving pipelines over vLLM, stored in DuckDB.",
    no_args_is_help=True,
    add_completion=False,
)

# Each command module exposes `register(app)`. They are plain imports: every one ships
# with the package, so one that fails to import is a bug and its traceback surfaces.
for _module in (
    solve,  # solve, runs, show, demo
    serve,  # serve (local vLLM server)
    prove,  # prove (formal pipelines)
    report,  # report, export, sql
    deploy,  # trigger (a deployment's run, named at creation)
    check,  # check (proof files outside a run)
):
    _module.register(app)


if __name__ == "__main__":
    app()
