"""whole: whole-proof generation. generate → check · r0 → repair · r1 → check · r1 → … →
prove holes (APOLLO repair of the failing proofs) → finalize."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import Field

from proofflow.strategies.registry import Chain, ChainEnv, StrategyConfig
from proofflow.strategies.shared.proofs import ProofStrategy, checks, holes

if TYPE_CHECKING:
    from proofflow.tasks.context import RunContext, WorkItem


class WholeConfig(StrategyConfig):
    """[prove.whole]"""

    repair_candidates: int = Field(2, ge=0, description="failing proofs per problem sent to APOLLO-style repair")


class WholeProof(ProofStrategy):
    name = "whole"
    help = "whole proofs, repaired with the checker's feedback, then APOLLO-style hole repair"
    candidate_stages = ("generate",)
    config_model = WholeConfig

    def own(self, ctx: RunContext) -> WholeConfig:
        """Its [prove.whole] section."""
        cfg = self.config(ctx.settings)
        assert isinstance(cfg, WholeConfig)
        return cfg

    def chain(self, ctx: RunContext, items: list[WorkItem], env: ChainEnv) -> Chain:
        from proofflow.flows.chains import Call, Work, asks
        from proofflow.tasks.ask import ask
        from proofflow.tasks.finalize import finalize
        from proofflow.tasks.formal_repair import plan_formal_repair
        from proofflow.tasks.prove_generate import plan_prove_generate

        p = ctx.settings.prove
        names = env.names
        yield asks(ask, ctx, plan_prove_generate(ctx, items), names, "generate")
        yield from checks(ctx, items, env, "check · r0")
        for round_ in range(1, p.repair_rounds + 1):
            yield asks(ask, ctx, plan_formal_repair(ctx, items, round_), names, f"repair · r{round_}")
            yield from checks(ctx, items, env, f"check · r{round_}")
        if p.repair_depth > 0 and self.own(ctx).repair_candidates > 0:
            for item in items:
                yield from holes(ctx, item, "repair", env)
        yield [Call(finalize, (ctx, items, names("finalize")), Work.LIGHT)]
