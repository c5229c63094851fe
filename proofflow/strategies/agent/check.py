"""Stage: check and audit each ended episode's candidate proof (stage `agent`), exactly as
tasks/check_proofs.py checks every other candidate; the tool's earlier check of the same
source is a verdict-cache hit, so this costs no second Lean or Coq run."""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE

from proofflow.tasks.context import RunContext, StageOutput, WorkItem
from proofflow.tasks.formal_runtime import AUDIT, FormalRuntime, KnownChecks
from proofflow.tasks.proof_text import extract_proof

CANDIDATE_STAGE = "agent"


def check_candidates(ctx: RunContext, items: list[WorkItem], known: KnownChecks | None) -> StageOutput:
    rt = FormalRuntime(ctx, known if known is not None else KnownChecks(), StageOutput())
    with rt.keep_on_failure():
        for item in (i.copy() for i in items):
            for sample in item.samples(CANDIDATE_STAGE):
                if item.verdict(sample.sample_id, AUDIT) is None:
                    rt.check_sample(item, sample, extract_proof(sample.completion or "", item.formal))
    return rt.finish()


@task(name="check-agent-proofs", task_run_name="{label}", cache_policy=NO_CACHE)
def check_agent_candidates(ctx: RunContext, items: list[WorkItem], known: KnownChecks | None,
                           label: str) -> StageOutput:
    return check_candidates(ctx, items, known)
