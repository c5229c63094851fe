"""Stage: generate N candidate solutions per problem.

Only the indices not yet stored are requested, in one request with n=missing (seeded
from the first missing sample's key), so a rerun of a finished problem calls nothing.
Samples go to the database writer as soon as the response arrives, before any check.
"""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE

from proofflow.keys import sample_id, seed_for
from proofflow.llm.client import EndpointError, Request, Response
from proofflow.storage.records import SampleRow
from proofflow.tasks.context import RunContext, WorkItem, render_prompt, runtime, to_json

STAGE = "generate"
PROMPTS = {"generate-verify-repair": "solve", "pot": "solve_pot", "csv": "solve_csv"}


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


def generate_candidates(ctx: RunContext, items: list[WorkItem]) -> list[WorkItem]:
    rt = runtime(ctx)
    n = ctx.settings.solve.samples
    plans = []
    for item in items:
        have = {s.idx for s in item.samples(STAGE)}
        missing = [i for i in range(n) if i not in have]
        if not missing:
            continue
        ids = [sample_id(ctx.run_id, item.problem.id, STAGE, None, i) for i in missing]
        prompt = render_prompt(PROMPTS[ctx.settings.solve.strategy], problem=item.problem.statement)
        request = Request(
            prompt=prompt, n=len(missing), seed=seed_for(ids[0]),
            context={"run_id": ctx.run_id, "problem_id": item.problem.id, "stage": STAGE},
        )
        plans.append((item, request, ids, missing))
    responses = rt.client.complete_many([p[1] for p in plans])
    params = rt.client.sampling_params()
    failures = []
    for (item, request, ids, missing), response in zip(plans, responses):
        if isinstance(response, EndpointError):
            failures.append(f"{item.problem.label}: {response}")
            continue
        rows = sample_rows(ctx, item, response, request.prompt, STAGE, ids, missing, None, 0, params)
        rt.writer.put(*rows)
        for row in rows:
            item.state.samples[row.sample_id] = row
    if failures:
        rt.writer.flush()  # keep what did come back before failing the stage
        raise EndpointError("generation failed for " + "; ".join(failures))
    return items


@task(name="generate", task_run_name="generate · {label}", cache_policy=NO_CACHE)
def generate(ctx: RunContext, items: list[WorkItem], label: str) -> list[WorkItem]:
    return generate_candidates(ctx, items)
