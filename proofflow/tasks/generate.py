"""Stage: generate N candidate solutions per problem.

Only the indices not yet stored are requested, in one request with n=missing (seeded
from the first missing sample's key), so a rerun of a finished problem calls nothing.
The flow stores the samples as soon as the request returns, before any check.
"""

from __future__ import annotations

from functools import partial

from prefect import task
from prefect.cache_policies import NO_CACHE

from proofflow.tasks.context import RunContext, StageOutput, WorkItem, render_prompt
from proofflow.tasks.sampling import Plan, missing_indices, sample_request

STAGE = "generate"
PROMPTS = {"generate-verify-repair": "solve", "pot": "solve_pot", "csv": "solve_csv"}


def plan_generate(ctx: RunContext, items: list[WorkItem]) -> list[Plan]:
    template = PROMPTS[ctx.settings.solve.strategy]
    plans: list[Plan] = []
    for item in items:
        prompt = partial(render_prompt, template, problem=item.answer_problem.statement)
        plans += missing_indices(ctx, item, STAGE, ctx.settings.solve.samples, prompt)
    return plans


@task(name="generate", task_run_name="{label}", cache_policy=NO_CACHE)
def generate(ctx: RunContext, plan: Plan, label: str) -> StageOutput:
    return sample_request(ctx, plan)
