"""`proofflow trigger`: start a run of a deployment (deployments/prefect.yaml) now, named
readably from the moment it is created.

Why not `prefect deployment run`: a flow run it creates gets a random name ("abiding-
angelfish") until a worker starts it and the flow names itself, so the UI's list shows
runs nobody can tell apart while they wait (issue 11.5). Here the `{date}`/`{datetime}`
of `run_name` are filled in once, at creation, and the flow run gets the same name the
flow gives itself ("solve · gsm8k · gsm8k-2026-11-24"), so the name does not change when
it starts, and the database's run has that name too.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, cast

import typer

from proofflow.commands.common import console

if TYPE_CHECKING:
    from prefect.client.schemas.objects import FlowRun

FLOW_NAMES = {"solve"}  # flows whose run names proofflow knows (flows/solve.py)


def readable_flow_run_name(flow: str, parameters: dict[str, Any]) -> str | None:
    """The name the flow gives its run (flows/solve.py _flow_run_name), from parameters
    whose run_name is already expanded; None for flows without a readable name."""
    from proofflow.flows.common import problem_set_name

    if flow not in FLOW_NAMES or not parameters.get("problem_file") or not parameters.get("run_name"):
        return None
    return f"{flow} · {problem_set_name(parameters['problem_file'], parameters.get('problem_set'))} · " \
           f"{parameters['run_name']}"


def _parse_params(pairs: list[str]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"{pair!r}: expected key=value (the value as JSON or plain text)")
        try:
            params[key] = json.loads(value)
        except json.JSONDecodeError:
            params[key] = value
    return params


def trigger(
    deployment: str = typer.Argument(..., help="FLOW/DEPLOYMENT, e.g. solve/examples-smoke"),
    param: list[str] | None = typer.Option(
        None, "--param", "-p", help="key=value, the value as JSON (overrides='{\"solve.samples\": 2}'); repeatable"),
) -> None:
    """Start a deployment's flow run now, with its readable name from the start (needs a
    Prefect server: PREFECT_API_URL; a worker on the deployment's pool runs it)."""
    from prefect.deployments import run_deployment
    from prefect.exceptions import ObjectNotFound
    from prefect.settings import get_current_settings

    from proofflow.flows.common import expand_run_name

    if not get_current_settings().api.url:
        console.print("[red]error:[/red] no Prefect server configured: set PREFECT_API_URL "
                      "(see deployments/README.md)")
        raise typer.Exit(2)
    flow, _, _ = deployment.partition("/")
    given = _parse_params(param or [])
    try:
        deployed = _read_deployment(deployment)
    except ObjectNotFound:
        console.print(f"[red]error:[/red] no deployment {deployment!r} on {get_current_settings().api.url}")
        raise typer.Exit(1) from None
    merged = {**deployed.parameters, **given}
    if isinstance(merged.get("run_name"), str):
        # Once, here: the flow would expand it again when it starts (a minute later, a
        # `{datetime}` name would differ from the one shown while it waited).
        given["run_name"] = merged["run_name"] = expand_run_name(merged["run_name"])
    name = readable_flow_run_name(flow, merged)
    # run_deployment is sync here (no event loop); its annotation also allows a coroutine.
    flow_run = cast("FlowRun", run_deployment(deployment, parameters=given, flow_run_name=name, timeout=0))
    ui = get_current_settings().ui_url
    console.print(f"created flow run {flow_run.name!r} ({flow_run.id})")
    if ui:
        console.print(f"Prefect UI: {ui}/runs/flow-run/{flow_run.id}")


def _read_deployment(name: str) -> Any:
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        return client.read_deployment_by_name(name)


def register(app: typer.Typer) -> None:
    app.command()(trigger)
