"""Turning planned model requests into stored samples: the one loop every generating
stage (generate, repair, draft, sketch, prove, hole attempts) goes through."""

from __future__ import annotations

from dataclasses import dataclass

from proofflow.keys import seed_for
from proofflow.llm.client import EndpointError, Request, Response
from proofflow.storage.records import SampleRow
from proofflow.tasks.context import RunContext, WorkItem, runtime, to_json


@dataclass(frozen=True)
class Plan:
    """One model request of a stage: `ids[i]` is the sample for choice i."""

    item: WorkItem
    prompt: str
    stage: str
    ids: list[str]
    indices: list[int]
    parent_id: str | None
    round: int


def request_samples(ctx: RunContext, plans: list[Plan]) -> None:
    """Send the plans concurrently, store one sample per choice (tokens, cost, call id)
    as soon as each answer arrives; raise after storing what did come back."""
    if not plans:
        return
    rt = runtime(ctx)
    requests = [Request(prompt=p.prompt, n=len(p.ids), seed=seed_for(p.ids[0]),
                        context={"run_id": ctx.run_id, "problem_id": p.item.problem.id, "stage": p.stage})
                for p in plans]
    responses = rt.client.complete_many(requests)
    params = rt.client.sampling_params()
    failures = []
    for plan, response in zip(plans, responses):
        if isinstance(response, EndpointError):
            failures.append(f"{plan.item.problem.label}: {response}")
            continue
        rows = sample_rows(ctx, plan.item, response, plan.prompt, plan.stage, plan.ids, plan.indices,
                           plan.parent_id, plan.round, params)
        rt.writer.put(*rows)
        for row in rows:
            plan.item.state.samples[row.sample_id] = row
    if failures:
        rt.writer.flush()
        raise EndpointError("model calls failed for " + "; ".join(failures))


def sample_rows(
    ctx: RunContext, item: WorkItem, response: Response, prompt: str, stage: str,
    ids: list[str], indices: list[int], parent_id: str | None, round_: int, params: dict,
) -> list[SampleRow]:
    """One SampleRow per choice; the request's prompt tokens and cost are shared out."""
    n = len(response.choices)
    prompt_share = [response.prompt_tokens // n] * n
    prompt_share[0] += response.prompt_tokens - sum(prompt_share)
    rows = []
    for i, (choice, sid, idx) in enumerate(zip(response.choices, ids, indices)):
        cost = None
        if response.cost is not None and response.completion_tokens + response.prompt_tokens > 0:
            # Split the call's cost by the tokens each sample accounts for.
            weight = (prompt_share[i] + choice.completion_tokens) / (response.prompt_tokens + response.completion_tokens)
            cost = response.cost * weight
        rows.append(SampleRow(
            sample_id=sid, run_id=ctx.run_id, problem_id=item.problem.id, stage=stage,
            parent_id=parent_id, idx=idx, round=round_, call_id=response.call_id,
            model=response.model, endpoint=response.endpoint, params=to_json(params),
            seed=response.seed, prompt=prompt, completion=choice.text,
            finish_reason=choice.finish_reason, prompt_tokens=prompt_share[i],
            completion_tokens=choice.completion_tokens, tokens_exact=choice.tokens_exact,
            latency_s=response.latency_s, cost=cost,
        ))
    return rows
