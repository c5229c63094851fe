"""Stage (whole-proof): sample N complete proofs per problem.

Only the indices not stored yet are requested (one request, n = missing), so a rerun
asks nothing for a problem that has its samples."""

from __future__ import annotations

from functools import partial

from proofflow.strategies.registry import strategy
from proofflow.tasks.context import RunContext, WorkItem
from proofflow.tasks.formal_runtime import prompt_name, solved
from proofflow.tasks.sampling import Plan, missing_indices

STAGE = "generate"


def plan_prove_generate(ctx: RunContext, items: list[WorkItem]) -> list[Plan]:
    chosen = strategy(ctx.settings.prove.strategy, "proof")  # its prompts/generate_<backend>.txt
    plans: list[Plan] = []
    for item in items:
        if solved(item):
            continue
        p = item.formal
        prompt = partial(chosen.prompt, prompt_name("generate", ctx), header=p.header.strip(),
                         statement=p.statement, informal=p.informal or "(none)")
        plans += missing_indices(ctx, item, STAGE, ctx.settings.prove.samples, prompt)
    return plans

