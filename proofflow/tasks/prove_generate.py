"""Stage (whole-proof): sample N complete proofs per problem.

Only the indices not stored yet are requested (one request, n = missing), so a rerun
asks nothing for a problem that has its samples."""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE

from proofflow.keys import sample_id
from proofflow.tasks.context import RunContext, WorkItem, render_prompt
from proofflow.tasks.formal_context import (
    Plan,
    formal,
    prompt_name,
    request_samples,
    solved,
)

STAGE = "generate"


def generate_proofs(ctx: RunContext, items: list[WorkItem]) -> list[WorkItem]:
    n = ctx.settings.prove.samples
    plans = []
    for item in items:
        if solved(item):
            continue
        have = {s.idx for s in item.samples(STAGE)}
        missing = [i for i in range(n) if i not in have]
        if not missing:
            continue
        p = formal(item)
        prompt = render_prompt(prompt_name("prove", ctx), header=p.header.strip(), statement=p.statement,
                               informal=p.informal or "(none)")
        ids = [sample_id(ctx.run_id, item.problem.id, STAGE, None, i) for i in missing]
        plans.append(Plan(item, prompt, STAGE, ids, missing, None, 0))
    request_samples(ctx, plans)
    return items


@task(name="prove-generate", task_run_name="generate · {label}", cache_policy=NO_CACHE)
def prove_generate(ctx: RunContext, items: list[WorkItem], label: str) -> list[WorkItem]:
    return generate_proofs(ctx, items)
