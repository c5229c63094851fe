"""Stage: generate N candidate solutions per problem.

Only the indices not yet stored are requested, in one request with n=missing (seeded
from the first missing sample's key), so a rerun of a finished problem calls nothing.
The flow stores the samples as soon as the request returns, before any check.
"""

from __future__ import annotations

from functools import partial

from proofflow.strategies.registry import strategy
from proofflow.tasks.context import RunContext, WorkItem
from proofflow.tasks.sampling import Plan, missing_indices

STAGE = "generate"


def plan_generate(ctx: RunContext, items: list[WorkItem]) -> list[Plan]:
    """The requests still missing; the prompt is the run's strategy's `generate` template
    (strategies/<name>/prompts/generate.txt). The model-asking task is tasks/ask.py."""
    chosen = strategy(ctx.settings.solve.strategy, "answer")
    plans: list[Plan] = []
    for item in items:
        prompt = partial(chosen.prompt, "generate", problem=item.answer_problem.statement)
        new = missing_indices(ctx, item, STAGE, ctx.settings.solve.samples, prompt)
        chat = item.answer_problem.metadata.get("messages")
        if isinstance(chat, list) and len(chat) > 1:
            # A chat-format problem (problems/answer_set.py): its system prompt and few-shot
            # turns start the conversation; the question goes last, in the strategy's prompt.
            for plan in new:
                plan.messages = [dict(m) for m in chat[:-1]] + plan.messages
        plans += new
    return plans

