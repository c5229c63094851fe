"""Turning planned model requests into sample rows: the one path every generating stage
(generate, repair, draft, sketch, prove, hole attempts) goes through.

Planning is cheap and happens where the state is (the flow): `missing_indices` for the
stages that draw N samples of one prompt (generate, prove_generate, draft) and
`children_of` for the stages that make one child per parent (repair, formal_repair,
sketch). Asking is one task run per unit and stage, whose requests go out together
(tasks/ask.py runs `sample_request` for each), and each answer's samples are handed to the
flow the moment that request returns, not when the whole stage has.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

from proofflow.keys import sample_id, seed_for
from proofflow.llm.client import Response
from proofflow.storage.records import CallRow, SampleRow
from proofflow.tasks.context import RunContext, StageOutput, WorkItem, to_json

Message = dict[str, Any]  # an OpenAI chat message: {"role": system|user|assistant|tool, "content": ...}


class Plan:
    """One model request of a stage: `ids[i]` is the sample for choice i. A plain class
    (not a dataclass) so Prefect does not walk it at every task submission.

    The request is a list of chat `messages` (system, user, assistant, tool turns), so a
    multi-turn conversation is something a planner builds. A plan given only `prompt`
    asks one user turn: the request every built-in stage sends. `prompt` is what the
    samples table stores: the last user turn's text, which for a one-turn request is the
    whole request (the messages are `[{"role": "user", "content": prompt}]`)."""

    __slots__ = ("problem_id", "prompt", "messages", "stage", "ids", "indices", "parent_id", "round")

    def __init__(self, problem_id: str, prompt: str, stage: str, ids: list[str], indices: list[int],
                 parent_id: str | None, round: int,  # noqa: A002 - the samples table's column name
                 messages: list[Message] | None = None):
        self.problem_id = problem_id
        self.prompt = prompt
        self.messages: list[Message] = messages if messages is not None else [{"role": "user", "content": prompt}]
        self.stage = stage
        self.ids = ids
        self.indices = indices
        self.parent_id = parent_id
        self.round = round

    def __repr__(self) -> str:
        return f"Plan({self.stage} {self.problem_id[:12]} n={len(self.ids)})"

    @property
    def one_user_turn(self) -> bool:
        """The request is `prompt` alone: sent as the client's plain prompt (chat or
        completions API alike)."""
        return self.messages == [{"role": "user", "content": self.prompt}]


def missing_indices(ctx: RunContext, item: WorkItem, stage: str, n: int,
                    prompt: Callable[[], str],
                    conversation: Callable[[str], list[Message]] | None = None) -> list[Plan]:
    """Request the indices 0..n-1 of `stage` not stored yet, in one request (n = missing,
    seeded from the first missing sample's key): a rerun of a finished problem asks nothing.
    `conversation(prompt)` makes the request's messages around the prompt (a system turn,
    earlier turns); without it the request is the prompt alone."""
    have = {s.idx for s in item.samples(stage)}
    missing = [i for i in range(n) if i not in have]
    if not missing:
        return []
    pid = item.problem.id
    ids = [sample_id(ctx.run_id, pid, stage, None, i) for i in missing]
    text = prompt()
    return [Plan(pid, text, stage, ids, missing, None, 0,
                 messages=conversation(text) if conversation is not None else None)]


def children_of(ctx: RunContext, item: WorkItem, stage: str, parents: Iterable[str],
                prompt: Callable[[str], str], round_: int) -> list[Plan]:
    """One child sample per parent sample id (a repair of a failed candidate, a sketch
    of a draft), skipping parents whose child is stored already."""
    plans = []
    for parent in parents:
        sid = sample_id(ctx.run_id, item.problem.id, stage, parent, 0)
        if sid in item.state.samples:
            continue
        plans.append(Plan(item.problem.id, prompt(parent), stage, [sid], [0], parent, round_))
    return plans


def sample_request(ctx: RunContext, plan: Plan) -> StageOutput:
    """Send one planned request; return its call rows (every attempt) and one sample row
    per choice. A request that fails for good raises the client's EndpointError, which
    carries the call rows of its attempts (`.calls`) for the flow to store."""
    from proofflow.llm.client import Request
    from proofflow.tasks import resources

    client = resources.model_client(ctx.settings.endpoint, ctx.settings.sampling, ctx.settings.reasoning)
    # A one-turn plan goes as the plain prompt, as every request did before plans had
    # messages (the completions API has no turns); a conversation goes as its messages.
    turns: dict[str, Any] = {} if plan.one_user_turn else {"messages": plan.messages}
    request = Request(prompt=plan.prompt, n=len(plan.ids), seed=seed_for(plan.ids[0]),
                      context={"run_id": ctx.run_id, "problem_id": plan.problem_id, "stage": plan.stage},
                      **turns)
    response = client.complete(request)
    out = StageOutput()
    out.add(*[c for c in getattr(response, "calls", ()) if isinstance(c, CallRow)])
    params = client.sampling_params()
    if not plan.one_user_turn:  # a conversation: stored as sent, so it can be rebuilt (sent_messages)
        params = {**params, "messages": plan.messages}
    out.add(*sample_rows(ctx, plan, response, params))
    return out


def sent_messages(sample: SampleRow) -> list[Message]:
    """The chat messages the request that made `sample` sent, rebuilt from its stored row:
    a conversation's messages are in `params` (as sent); a one-turn request is its prompt."""
    params = json.loads(sample.params) if sample.params else {}
    if isinstance(params, dict) and isinstance(params.get("messages"), list):
        return list(params["messages"])
    return [{"role": "user", "content": sample.prompt or ""}]


def sample_rows(ctx: RunContext, plan: Plan, response: Response, params: dict[str, Any]) -> list[SampleRow]:
    """One SampleRow per choice; the request's prompt tokens and cost are shared out."""
    n = len(response.choices)
    prompt_share = [response.prompt_tokens // n] * n
    prompt_share[0] += response.prompt_tokens - sum(prompt_share)
    rows = []
    params_json = to_json(params)  # the request's, the same for each of its samples
    for i, (choice, sid, idx) in enumerate(zip(response.choices, plan.ids, plan.indices)):
        cost = None
        if response.cost is not None and response.completion_tokens + response.prompt_tokens > 0:
            # Split the call's cost by the tokens each sample accounts for.
            total = response.prompt_tokens + response.completion_tokens
            weight = (prompt_share[i] + choice.completion_tokens) / total
            cost = response.cost * weight
        rows.append(SampleRow(
            sample_id=sid, run_id=ctx.run_id, problem_id=plan.problem_id, stage=plan.stage,
            parent_id=plan.parent_id, idx=idx, round=plan.round, call_id=response.call_id,
            model=response.model, endpoint=response.endpoint, params=params_json,
            seed=response.seed, prompt=plan.prompt, completion=choice.text,
            finish_reason=choice.finish_reason, prompt_tokens=prompt_share[i],
            completion_tokens=choice.completion_tokens, tokens_exact=choice.tokens_exact,
            latency_s=response.latency_s, cost=cost,
            reasoning=choice.reasoning, reasoning_tokens=choice.reasoning_tokens,
            reasoning_tokens_source=choice.reasoning_tokens_source,
            budget_exhausted=choice.budget_exhausted if choice.reasoning is not None else None,
        ))
    return rows


def tool_sample(ctx: RunContext, problem_id: str, sid: str, stage: str, model: str, text: str,
                parent_id: str | None, idx: int, round_: int, prompt: str | None = None) -> SampleRow:
    """A sample no model call produced (automation tactic, masking, assembly, a data
    set's informal proof): zero tokens, no call, `model` says what made it."""
    return SampleRow(
        sample_id=sid, run_id=ctx.run_id, problem_id=problem_id, stage=stage,
        parent_id=parent_id, idx=idx, round=round_, call_id=None, model=model, endpoint=None,
        params=None, seed=None, prompt=prompt, completion=text, finish_reason=None,
        prompt_tokens=0, completion_tokens=0, tokens_exact=True, latency_s=0.0, cost=None,
    )
