"""Stage: record a problem as done — the first proof the audit passed, if any."""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE

from proofflow.storage.records import ResultRow
from proofflow.tasks.context import RunContext, StageOutput, WorkItem, passed
from proofflow.tasks.formal_runtime import AUDIT

SELECTION = "first_complete"


def finalize_items(ctx: RunContext, items: list[WorkItem]) -> StageOutput:
    out = StageOutput()
    for item in items:
        judged = [(s, v) for s in item.samples() if (v := item.verdict(s.sample_id, AUDIT)) is not None]
        proofs = [s for s, v in judged if passed(v)]
        chosen = proofs[0] if proofs else None
        out.add(ResultRow(
            run_id=ctx.run_id, problem_id=item.problem.id, selection=SELECTION,
            selected_answer=None, selected_sample_id=chosen.sample_id if chosen else None,
            correct=bool(proofs), solved=bool(proofs), n_samples=len(judged), n_passed=len(proofs),
        ))
    return out


@task(name="finalize", task_run_name="{label}", cache_policy=NO_CACHE)
def finalize(ctx: RunContext, items: list[WorkItem], label: str) -> StageOutput:
    return finalize_items(ctx, items)
