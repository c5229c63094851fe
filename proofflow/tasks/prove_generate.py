"""Stage (whole-proof): sample N complete proofs per problem.

Only the indices not stored yet are requested (one request, n = missing), so a rerun
asks nothing for a problem that has its samples."""

from __future__ import annotations

from functools import partial

from prefect import task
from prefect.cache_policies import NO_CACHE

from proofflow.tasks.context import RunContext, StageOutput, WorkItem, render_prompt
from proofflow.tasks.formal_runtime import prompt_name, solved
from proofflow.tasks.sampling import Plan, missing_indices, sample_request

STAGE = "generate"


def plan_prove_generate(ctx: RunContext, items: list[WorkItem]) -> list[Plan]:
    plans: list[Plan] = []
    for item in items:
        if solved(item):
            continue
        p = item.formal
        prompt = partial(render_prompt, prompt_name("prove", ctx), header=p.header.strip(),
                         statement=p.statement, informal=p.informal or "(none)")
        plans += missing_indices(ctx, item, STAGE, ctx.settings.prove.samples, prompt)
    return plans


@task(name="prove-generate", task_run_name="{label}", cache_policy=NO_CACHE)
def prove_generate(ctx: RunContext, plan: Plan, label: str) -> StageOutput:
    return sample_request(ctx, plan)
