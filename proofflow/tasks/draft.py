"""Stage (DSP+): an informal, step-structured proof per sketch to come.

When the data set carries an informal proof (metadata `informal_proof`) and
[prove.dsp] use_informal_proof is on, it is the one draft: a sample with model='dataset' and zero
tokens, no model call (`given_drafts`, made in the flow: nothing to wait for)."""

from __future__ import annotations

from functools import partial

from proofflow.keys import sample_id
from proofflow.storage.records import SampleRow
from proofflow.strategies.registry import strategy
from proofflow.tasks.context import RunContext, WorkItem
from proofflow.tasks.formal_runtime import solved
from proofflow.tasks.sampling import Plan, missing_indices, tool_sample

STAGE = "draft"


def _given(ctx: RunContext, item: WorkItem) -> str | None:
    given = item.formal.metadata.get("informal_proof")
    # [prove.dsp] use_informal_proof (looked up by name: the strategy's module imports this one)
    use_given = strategy("dsp", "proof").config(ctx.settings).model_dump()["use_informal_proof"]
    if use_given and isinstance(given, str) and given.strip():
        return given
    return None


def given_drafts(ctx: RunContext, items: list[WorkItem]) -> list[SampleRow]:
    """The data set's informal proofs, as draft samples not stored yet."""
    rows = []
    for item in items:
        given = _given(ctx, item)
        if given is None or solved(item):
            continue
        sid = sample_id(ctx.run_id, item.problem.id, STAGE, None, 0)
        if sid not in item.state.samples:
            rows.append(tool_sample(ctx, item.problem.id, sid, STAGE, "dataset", given, None, 0, 0))
    return rows


def plan_draft(ctx: RunContext, items: list[WorkItem]) -> list[Plan]:
    plans: list[Plan] = []
    for item in items:
        if solved(item) or _given(ctx, item) is not None:
            continue
        p = item.formal
        prompt = partial(strategy("dsp", "proof").prompt, "draft", statement=p.statement,
                         informal=p.informal or "(none)")
        plans += missing_indices(ctx, item, STAGE, ctx.settings.prove.samples, prompt)
    return plans

