"""Stage (DSP+): an informal, step-structured proof per sketch to come.

When the data set carries an informal proof (metadata `informal_proof`) and
use_informal_proof is on, it is the one draft: stored as a sample with
model='dataset' and zero tokens, no model call."""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE

from proofflow.keys import sample_id
from proofflow.tasks.context import RunContext, WorkItem, render_prompt
from proofflow.tasks.formal_context import (
    Plan,
    formal,
    request_samples,
    solved,
    tool_sample,
)

STAGE = "draft"


def draft_proofs(ctx: RunContext, items: list[WorkItem]) -> list[WorkItem]:
    cfg = ctx.settings.prove
    plans = []
    for item in items:
        if solved(item):
            continue
        p = formal(item)
        given = p.metadata.get("informal_proof")
        if cfg.use_informal_proof and isinstance(given, str) and given.strip():
            sid = sample_id(ctx.run_id, item.problem.id, STAGE, None, 0)
            if sid not in item.state.samples:
                tool_sample(ctx, item, sid, STAGE, "dataset", given, None, 0, 0)
            continue
        have = {s.idx for s in item.samples(STAGE)}
        missing = [i for i in range(cfg.samples) if i not in have]
        if not missing:
            continue
        prompt = render_prompt("draft", statement=p.statement, informal=p.informal or "(none)")
        ids = [sample_id(ctx.run_id, item.problem.id, STAGE, None, i) for i in missing]
        plans.append(Plan(item, prompt, STAGE, ids, missing, None, 0))
    request_samples(ctx, plans)
    return items


@task(name="draft", task_run_name="draft · {label}", cache_policy=NO_CACHE)
def draft(ctx: RunContext, items: list[WorkItem], label: str) -> list[WorkItem]:
    return draft_proofs(ctx, items)
