"""What a run shows in the Prefect UI: a progress artifact updated as problems finish,
and a table and a Markdown summary at the end (also when the run failed)."""

from __future__ import annotations

from typing import Any

from proofflow.flows.progress import Progress, publish
from proofflow.storage.db import Store

# The progress artifact is an API round trip (~10-100 ms) made by the thread that submits
# the next stages: at most this often while a run goes, and once more at its end.
PROGRESS_EVERY_S = 2.0

def artifact_key(kind: str, run_name: str) -> str:
    # Artifact keys allow lowercase letters, digits and dashes only.
    safe = "".join(c if c.isalnum() else "-" for c in run_name.lower()).strip("-")
    return f"proofflow-{kind}-{safe}"[:120]



def create_progress(name: str, done: int, total: int, solved: int, description: str) -> Any:
    """The run's progress artifact (its id, for update_progress); also tells the
    in-process listeners (the CLI's progress bar)."""
    from prefect.artifacts import create_progress_artifact

    artifact = create_progress_artifact(
        progress=100.0 * done / max(1, total), key=artifact_key("progress", name), description=description)
    publish(Progress(name, done, total, solved))
    return artifact


def update_progress(artifact_id: Any, done: int, total: int, description: str) -> None:
    from prefect.artifacts import update_progress_artifact

    update_progress_artifact(artifact_id, 100.0 * done / max(1, total), description=description)


def publish_summary(store: Store, run_id: str, name: str) -> dict[str, Any]:
    """The end-of-run summary, as a table and a Markdown artifact in the Prefect UI; the
    run's headline figures are returned."""
    from prefect.artifacts import create_markdown_artifact, create_table_artifact

    from proofflow.report.summary import summary_markdown, summary_table_rows
    from proofflow.storage.summary import run_headline

    create_table_artifact(
        table=summary_table_rows(store, run_id), key=artifact_key("summary", name),
        description=f"Summary of run {name}",
    )
    create_markdown_artifact(
        markdown=summary_markdown(store, run_id), key=artifact_key("report", name),
        description=f"Report of run {name}",
    )
    return run_headline(store, run_id)
