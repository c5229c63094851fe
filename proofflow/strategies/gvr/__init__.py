"""gvr: generate → verify → repair. Chain-of-thought answers; repairs are driven by the
reference-answer check (oracle feedback, for measuring repair itself)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from proofflow.strategies.registry import Chain, ChainEnv, Strategy
from proofflow.strategies.shared.answers import answer_chain, answer_identity

if TYPE_CHECKING:
    from proofflow.config import Settings
    from proofflow.tasks.context import RunContext, WorkItem

# Runs stored their strategy as "generate-verify-repair" before it had a short name: the
# runs table and the run identity keep that label, so those runs resume and their
# sample ids (derived from the run's name) stay the same.
LEGACY_LABEL = "generate-verify-repair"


class GenerateVerifyRepair(Strategy):
    name = "gvr"
    kind = "answer"
    help = "generate → verify → repair with the reference check's feedback (alias generate-verify-repair)"
    aliases = (LEGACY_LABEL,)

    @property
    def run_label(self) -> str:
        return LEGACY_LABEL

    def identity_keys(self, settings: Settings) -> dict[str, Any]:
        return answer_identity(LEGACY_LABEL, settings)

    def chain(self, ctx: RunContext, items: list[WorkItem], env: ChainEnv) -> Chain:
        return answer_chain(ctx, items, env, runs_code=False)
