"""csv: code-based self-verification. The model answers, then writes code checking its
own answer; the sandbox runs it; a False sends the sample to repair (no oracle)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from proofflow.strategies.registry import Chain, ChainEnv, Strategy
from proofflow.strategies.shared.answers import answer_chain, answer_identity

if TYPE_CHECKING:
    from proofflow.config import Settings
    from proofflow.tasks.context import RunContext, WorkItem


class CodeSelfVerification(Strategy):
    name = "csv"
    kind = "answer"
    help = "code-based self-verification: the model checks its own answer in the sandbox; False is repaired"

    def identity_keys(self, settings: Settings) -> dict[str, Any]:
        return answer_identity(self.name, settings)

    def chain(self, ctx: RunContext, items: list[WorkItem], env: ChainEnv) -> Chain:
        return answer_chain(ctx, items, env, runs_code=True)
