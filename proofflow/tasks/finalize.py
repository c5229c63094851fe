"""Stage: record a problem as done — the first proof the audit passed, if any."""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE

from proofflow.storage.records import ResultRow
from proofflow.tasks.context import RunContext, WorkItem, runtime
from proofflow.tasks.formal_context import AUDIT

SELECTION = "first_complete"


def finalize_items(ctx: RunContext, items: list[WorkItem]) -> list[ResultRow]:
    rt = runtime(ctx)
    results = []
    for item in items:
        judged = [(s, v) for s in item.samples() if (v := item.verdict(s.sample_id, AUDIT)) is not None]
        passed = [s for s, v in judged if v.outcome == "pass"]
        chosen = passed[0] if passed else None
        result = ResultRow(
            run_id=ctx.run_id, problem_id=item.problem.id, selection=SELECTION,
            selected_answer=None, selected_sample_id=chosen.sample_id if chosen else None,
            correct=bool(passed), solved=bool(passed), n_samples=len(judged), n_passed=len(passed),
        )
        rt.writer.put(result)
        item.state.result = result
        results.append(result)
    return results


@task(name="finalize", task_run_name="finalize · {label}", cache_policy=NO_CACHE)
def finalize(ctx: RunContext, items: list[WorkItem], label: str) -> list[ResultRow]:
    return finalize_items(ctx, items)
