"""twoturn: a small answer strategy outside proofflow, built the way registry.py says.

Each candidate is one request carrying a conversation (system, user, assistant, user
turns) built by the planner; its samples are stage `attempt`, which it names as its
candidates, so pass@k counts them. Its settings are the `[solve.twoturn]` section."""

from __future__ import annotations

from functools import partial
from typing import Any

from proofflow.config import Settings
from proofflow.strategies.registry import Chain, ChainEnv, Strategy, StrategyConfig
from proofflow.tasks.context import RunContext, WorkItem

STAGE = "attempt"


class TwoTurnConfig(StrategyConfig):
    attempts: int = 2
    system: str = "You are a careful calculator."


class TwoTurn(Strategy):
    name = "twoturn"
    kind = "answer"
    help = "a fixture: one conversation per candidate (tests/strategies_fixture)"
    config_model = TwoTurnConfig
    candidate_stages = (STAGE,)

    def identity_keys(self, settings: Settings) -> dict[str, Any]:
        cfg = self.config(settings)
        assert isinstance(cfg, TwoTurnConfig)
        return {"strategy": self.name, "attempts": cfg.attempts, "system": cfg.system}

    def chain(self, ctx: RunContext, items: list[WorkItem], env: ChainEnv) -> Chain:
        from proofflow.flows.chains import Call, asks
        from proofflow.tasks.ask import ask
        from proofflow.tasks.sampling import Message, missing_indices
        from proofflow.tasks.select import select
        from proofflow.tasks.verify import verify

        cfg = self.config(ctx.settings)
        assert isinstance(cfg, TwoTurnConfig)

        def conversation(question: str) -> list[Message]:
            return [
                {"role": "system", "content": cfg.system},
                {"role": "user", "content": question},
                {"role": "assistant", "content": "Let me work it out step by step."},
                {"role": "user", "content": "Now state only the final answer."},
            ]

        plans = []
        for item in items:
            question = partial(self.prompt, "ask", problem=item.answer_problem.statement)
            plans += missing_indices(ctx, item, STAGE, cfg.attempts, question, conversation)
        yield asks(ask, ctx, plans, env.names, STAGE)
        yield [Call(verify, (ctx, items, env.names("verify")))]
        yield [Call(select, (ctx, items, env.names("select")))]
