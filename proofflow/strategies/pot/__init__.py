"""pot: program of thought. The model writes a program whose printed output is the
answer; the sandbox runs it, the answer check reads what it printed."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from proofflow.strategies.registry import Chain, ChainEnv, Strategy
from proofflow.strategies.shared.answers import answer_chain, answer_identity

if TYPE_CHECKING:
    from proofflow.config import Settings
    from proofflow.tasks.context import RunContext, WorkItem


class ProgramOfThought(Strategy):
    name = "pot"
    kind = "answer"
    help = "program of thought: the sandbox runs the model's program, its output is the answer"

    def identity_keys(self, settings: Settings) -> dict[str, Any]:
        return answer_identity(self.name, settings)

    def chain(self, ctx: RunContext, items: list[WorkItem], env: ChainEnv) -> Chain:
        return answer_chain(ctx, items, env, runs_code=True)
