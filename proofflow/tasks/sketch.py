"""Stage (DSP+): one formal sketch per draft — the theorem with each step stated and
left as a hole (Coq `assert (hN : T) by admit.`, Lean `have hN : T := by sorry`)."""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE

from proofflow.keys import sample_id
from proofflow.tasks.context import RunContext, WorkItem, render_prompt
from proofflow.tasks.formal_context import (
    Plan,
    clip,
    formal,
    prompt_name,
    request_samples,
    solved,
)

STAGE = "sketch"


def sketch_proofs(ctx: RunContext, items: list[WorkItem]) -> list[WorkItem]:
    plans = []
    for item in items:
        if solved(item):
            continue
        p = formal(item)
        for parent in item.samples("draft"):
            sid = sample_id(ctx.run_id, item.problem.id, STAGE, parent.sample_id, 0)
            if sid in item.state.samples:
                continue
            prompt = render_prompt(prompt_name("sketch", ctx), header=p.header.strip(),
                                   statement=p.statement, draft=clip(parent.completion or "", 2000))
            plans.append(Plan(item, prompt, STAGE, [sid], [0], parent.sample_id, 0))
    request_samples(ctx, plans)
    return items


@task(name="sketch", task_run_name="sketch · {label}", cache_policy=NO_CACHE)
def sketch(ctx: RunContext, items: list[WorkItem], label: str) -> list[WorkItem]:
    return sketch_proofs(ctx, items)
