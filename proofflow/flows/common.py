"""Orchestration shared by the solve and prove flows: starting or resuming a run,
keeping a window of stage chains in flight, naming, and the end-of-run artifacts."""

from __future__ import annotations

import json
import queue
from collections.abc import Callable, Iterable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TypeVar

from prefect.artifacts import create_markdown_artifact, create_table_artifact

from proofflow import __version__
from proofflow.config import Settings
from proofflow.keys import config_hash, run_id_for
from proofflow.storage.db import Store
from proofflow.storage.records import RunRow

Unit = TypeVar("Unit")


class RunConfigMismatch(ValueError):
    pass


def expand_run_name(template: str, now: datetime | None = None) -> str:
    """`{date}` / `{datetime}` in a run name become today's date / the current minute
    (UTC), so a scheduled deployment starts one run per day (or per trigger) and a
    repeated trigger on the same day resumes that day's run."""
    now = now or datetime.now(timezone.utc)
    return template.replace("{date}", now.strftime("%Y-%m-%d")).replace(
        "{datetime}", now.strftime("%Y-%m-%dT%H%M"))


def start_run(
    store: Store, name: str, strategy: str, problem_file: str, settings: Settings,
    identity: dict[str, Any],
) -> RunRow:
    """Create the run, or resume the stored one of that name. `identity` holds the
    settings that change what the run's samples mean; resuming with other values would
    mix incomparable samples, so it is refused with the differing keys named."""
    wanted = RunRow(
        run_id=run_id_for(name), name=name, strategy=strategy, problem_set=Path(problem_file).stem,
        model=settings.endpoint.model,
        config=json.dumps({"identity": identity, "settings": json.loads(settings.model_dump_json())}),
        config_hash=config_hash(identity), code_version=__version__, status="running",
    )
    run = store.start_run(wanted)
    if run.config_hash != wanted.config_hash:
        stored = json.loads(run.config).get("identity", {})
        changed = sorted(k for k in set(stored) | set(identity) if stored.get(k) != identity.get(k))
        raise RunConfigMismatch(
            f"run {name!r} already exists with different settings ({', '.join(changed)}); "
            "resume it with the same settings or choose another --run name"
        )
    return run


def run_chains(
    backlog: Iterable[Unit],
    window: int,
    submit: Callable[[Unit], list[Any]],
    on_finished: Callable[[Any, list[Any]], None],
) -> None:
    """Keep `window` stage chains in flight, submitting the next unit's chain as one
    finishes. `submit` returns a chain of Prefect futures whose last is the final stage;
    `on_finished(final result, chain)` runs in the flow as each chain ends.

    Why a window: every stage of every submitted chain holds a task-runner thread while
    it waits for its upstream, so submitting everything at once would leave few threads
    doing model calls.
    """
    finished: queue.Queue = queue.Queue()
    chains: dict[Any, list[Any]] = {}
    units = iter(backlog)

    def submit_next() -> bool:
        unit = next(units, None)
        if unit is None:
            return False
        chain = submit(unit)
        chains[chain[-1]] = chain
        chain[-1].add_done_callback(finished.put)
        return True

    in_flight = sum(submit_next() for _ in range(window))
    while in_flight:
        final = finished.get()
        in_flight -= 1
        chain = chains.pop(final)
        on_finished(result_or_root_cause(chain), chain)
        in_flight += submit_next()


def result_or_root_cause(chain: list[Any]) -> Any:
    """The final stage's result; if a stage upstream failed, that stage's own exception
    (the final stage then never ran, and its future only says "not ready")."""
    final = chain[-1]
    final.wait()
    if final.state.is_completed():
        return final.result()
    for stage in chain:
        stage.wait()
        if stage.state.is_failed() or stage.state.is_crashed():
            stage.result()  # raises the stage's exception
    return final.result()


def artifact_key(kind: str, run_name: str) -> str:
    # Artifact keys allow lowercase letters, digits and dashes only.
    safe = "".join(c if c.isalnum() else "-" for c in run_name.lower()).strip("-")
    return f"proofflow-{kind}-{safe}"[:120]


def publish_summary(store: Store, run_id: str, name: str) -> dict[str, Any]:
    """The end-of-run summary, as a table and a Markdown artifact in the Prefect UI."""
    from proofflow.report.summary import summary_markdown, summary_table_rows
    from proofflow.storage.summary import run_summary

    create_table_artifact(
        table=summary_table_rows(store, run_id), key=artifact_key("summary", name),
        description=f"Summary of run {name}",
    )
    create_markdown_artifact(
        markdown=summary_markdown(store, run_id), key=artifact_key("report", name),
        description=f"Report of run {name}",
    )
    return run_summary(store, run_id)
