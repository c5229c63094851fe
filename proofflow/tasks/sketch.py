"""Stage (DSP+): one formal sketch per draft — the theorem with each step stated and
left as a hole (Coq `assert (hN : T) by admit.`, Lean `have hN : T := by sorry`)."""

from __future__ import annotations

from proofflow.storage.records import SampleRow
from proofflow.strategies.registry import strategy
from proofflow.tasks.context import RunContext, WorkItem
from proofflow.tasks.formal_runtime import prompt_name, solved
from proofflow.tasks.proof_text import clip
from proofflow.tasks.sampling import Plan, children_of
from proofflow.verifiers.formal import FormalProblem

STAGE = "sketch"


def plan_sketch(ctx: RunContext, items: list[WorkItem]) -> list[Plan]:
    plans: list[Plan] = []
    for item in items:
        if solved(item):
            continue
        p = item.formal
        drafts = {s.sample_id: s for s in item.samples("draft")}

        def prompt(parent: str, p: FormalProblem = p, drafts: dict[str, SampleRow] = drafts) -> str:
            return strategy("dsp", "proof").prompt(prompt_name("sketch", ctx), header=p.header.strip(),
                                                   statement=p.statement,
                                                   draft=clip(drafts[parent].completion or "", 2000))

        plans += children_of(ctx, item, STAGE, drafts, prompt, 0)
    return plans

