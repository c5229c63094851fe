"""Stage task: ask the model. The one task every generating stage submits (generate,
repair, draft, sketch, a strategy's own turns): one task run per planned request, so
each answer's samples are stored the moment it returns. What differs between stages is
the plan (tasks/sampling.py: its chat messages, sample ids, parent, round), not the task.
"""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE

from proofflow.tasks.context import RunContext, StageOutput
from proofflow.tasks.sampling import Plan, sample_request


@task(name="ask", task_run_name="{label}", cache_policy=NO_CACHE)
def ask(ctx: RunContext, plan: Plan, label: str) -> StageOutput:
    return sample_request(ctx, plan)
