"""Stage (whole-proof): send each rejected proof of the previous round back with the
checker's feedback; each repair is a new sample whose parent is the proof it repairs."""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE

from proofflow.storage.records import SampleRow, VerdictRow
from proofflow.tasks.context import RunContext, StageOutput, WorkItem, passed, render_prompt
from proofflow.tasks.formal_runtime import AUDIT, prompt_name
from proofflow.tasks.proof_text import clip, extract_proof
from proofflow.tasks.sampling import Plan, children_of, sample_request
from proofflow.verifiers.formal import FormalProblem

STAGE = "repair"


def plan_formal_repair(ctx: RunContext, items: list[WorkItem], round_: int) -> list[Plan]:
    plans: list[Plan] = []
    for item in items:
        if ctx.settings.prove.stop_on_first_complete and _proved_before(item, round_):
            continue
        p = item.formal
        failed: dict[str, tuple[SampleRow, VerdictRow]] = {}
        for parent in item.samples(round_=round_ - 1):
            verdict = item.verdict(parent.sample_id, AUDIT)
            if parent.stage in ("generate", "repair") and verdict is not None and not passed(verdict):
                failed[parent.sample_id] = (parent, verdict)

        def prompt(parent_id: str, p: FormalProblem = p,
                   failed: dict[str, tuple[SampleRow, VerdictRow]] = failed) -> str:
            parent, verdict = failed[parent_id]
            return render_prompt(prompt_name("formal_repair", ctx), header=p.header.strip(),
                                 attempt=clip(extract_proof(parent.completion or "", p)),
                                 feedback=clip(verdict.feedback or f"rejected: {verdict.reason}", 1500))

        plans += children_of(ctx, item, STAGE, failed, prompt, round_)
    return plans


def _proved_before(item: WorkItem, round_: int) -> bool:
    """Proved by a candidate of an earlier round. Not `solved(item)`: a run killed in the
    middle of this round resumes with some of its repairs stored (and checked by the
    first check stage of the resumed run); a clean run planned the whole round before any
    of them was checked, so the resumed one asks the rest too (as tasks/repair.py)."""
    return any(passed(item.verdict(s.sample_id, AUDIT)) for s in item.samples() if s.round < round_)


@task(name="formal-repair", task_run_name="{label}", cache_policy=NO_CACHE)
def formal_repair(ctx: RunContext, plan: Plan, label: str) -> StageOutput:
    return sample_request(ctx, plan)
