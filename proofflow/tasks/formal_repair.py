"""Stage (whole-proof): send each rejected proof of the previous round back to the model
with the checker's feedback (reasons, errors with positions, open goals). Each repair is
a new sample whose parent is the proof it repairs."""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE

from proofflow.keys import sample_id
from proofflow.tasks.context import RunContext, WorkItem, render_prompt
from proofflow.tasks.formal_context import (
    AUDIT,
    Plan,
    clip,
    extract_proof,
    formal,
    prompt_name,
    request_samples,
    solved,
)

STAGE = "repair"


def repair_proofs(ctx: RunContext, items: list[WorkItem], round_: int) -> list[WorkItem]:
    plans = []
    for item in items:
        if solved(item) and ctx.settings.prove.stop_on_first_complete:
            continue
        p = formal(item)
        for parent in item.samples(round_=round_ - 1):
            if parent.stage not in ("generate", "repair"):
                continue
            verdict = item.verdict(parent.sample_id, AUDIT)
            if verdict is None or verdict.outcome == "pass":
                continue
            sid = sample_id(ctx.run_id, item.problem.id, STAGE, parent.sample_id, 0)
            if sid in item.state.samples:
                continue
            prompt = render_prompt(prompt_name("formal_repair", ctx), header=p.header.strip(),
                                   attempt=clip(extract_proof(parent.completion or "", p)),
                                   feedback=clip(verdict.feedback or f"rejected: {verdict.reason}", 1500))
            plans.append(Plan(item, prompt, STAGE, [sid], [0], parent.sample_id, round_))
    request_samples(ctx, plans)
    return items


@task(name="formal-repair", task_run_name="repair {round_} · {label}", cache_policy=NO_CACHE)
def formal_repair(ctx: RunContext, items: list[WorkItem], round_: int, label: str) -> list[WorkItem]:
    return repair_proofs(ctx, items, round_)
