"""Stage: generate N candidate solutions per problem.

Only the indices not yet stored are requested, in one request with n=missing (seeded
from the first missing sample's key), so a rerun of a finished problem calls nothing.
Samples go to the database writer as soon as the response arrives, before any check.
"""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE

from proofflow.keys import sample_id
from proofflow.tasks.context import RunContext, WorkItem, render_prompt
from proofflow.tasks.sampling import Plan, request_samples

STAGE = "generate"
PROMPTS = {"generate-verify-repair": "solve", "pot": "solve_pot", "csv": "solve_csv"}


def generate_candidates(ctx: RunContext, items: list[WorkItem]) -> list[WorkItem]:
    n = ctx.settings.solve.samples
    plans = []
    for item in items:
        have = {s.idx for s in item.samples(STAGE)}
        missing = [i for i in range(n) if i not in have]
        if not missing:
            continue
        ids = [sample_id(ctx.run_id, item.problem.id, STAGE, None, i) for i in missing]
        prompt = render_prompt(PROMPTS[ctx.settings.solve.strategy], problem=item.problem.statement)
        plans.append(Plan(item, prompt, STAGE, ids, missing, None, 0))
    request_samples(ctx, plans)
    return items


@task(name="generate", task_run_name="generate · {label}", cache_policy=NO_CACHE)
def generate(ctx: RunContext, items: list[WorkItem], label: str) -> list[WorkItem]:
    return generate_candidates(ctx, items)
