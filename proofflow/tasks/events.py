"""Events the stage tasks' resources publish for the flow's listeners: a model server
that stalls (llm/stall.py) is told to flows/progress.py, where the CLI's progress bar
and the stall report listen."""

from __future__ import annotations

from proofflow.llm.stall import Stall


def publish_stall(stall: Stall) -> None:
    # flows/progress.py is plain Python (no Prefect): importing it here costs nothing.
    from proofflow.flows import progress

    progress.publish_stall(stall)
