"""Stage (whole-proof): send each rejected proof of the previous round back with the
checker's feedback; each repair is a new sample whose parent is the proof it repairs."""

from __future__ import annotations

from proofflow.storage.records import SampleRow, VerdictRow
from proofflow.strategies.registry import strategy
from proofflow.tasks.context import RunContext, WorkItem, passed
from proofflow.tasks.formal_runtime import AUDIT, prompt_name
from proofflow.tasks.proof_text import clip, extract_proof
from proofflow.tasks.sampling import Plan, children_of
from proofflow.verifiers.formal import FormalProblem

STAGE = "repair"


def plan_formal_repair(ctx: RunContext, items: list[WorkItem], round_: int) -> list[Plan]:
    chosen = strategy(ctx.settings.prove.strategy, "proof")  # its prompts/repair_<backend>.txt
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
            return chosen.prompt(prompt_name("repair", ctx), header=p.header.strip(),
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

