"""Stage: check every proof candidate that has no audited verdict yet.

Candidates are whole proofs (stages generate, repair) and sketches (a sketch with no
hole that checks is a proof). With stop_on_first_complete, a problem's remaining
candidates are not checked once one passed the audit: they would only cost checker time.
"""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE

from proofflow.tasks.context import RunContext, WorkItem
from proofflow.tasks.formal_context import (
    AUDIT,
    check_sample,
    extract_proof,
    formal,
    solved,
)

CANDIDATE_STAGES = ("generate", "repair", "sketch")


def check_candidates(ctx: RunContext, items: list[WorkItem]) -> list[WorkItem]:
    stop = ctx.settings.prove.stop_on_first_complete
    for item in items:
        for sample in item.samples():
            if sample.stage not in CANDIDATE_STAGES or item.verdict(sample.sample_id, AUDIT) is not None:
                continue
            if stop and solved(item):
                break
            check_sample(ctx, item, sample, extract_proof(sample.completion or "", formal(item)))
    return items


@task(name="check-proofs", task_run_name="check · {label}", cache_policy=NO_CACHE)
def check_proofs(ctx: RunContext, items: list[WorkItem], label: str) -> list[WorkItem]:
    return check_candidates(ctx, items)
