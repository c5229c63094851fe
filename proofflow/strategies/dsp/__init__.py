"""dsp: draft → sketch → prove (DSP+). An informal draft (or the data set's own), a
formal sketch whose steps are holes, the sketch checked, its holes closed by automation
then the prover model (the shared APOLLO piece), the assembled proof checked."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import Field

from proofflow.strategies.registry import Chain, ChainEnv, StrategyConfig
from proofflow.strategies.shared.proofs import ProofStrategy, checks, holes

if TYPE_CHECKING:
    from proofflow.tasks.context import RunContext, WorkItem


class DspConfig(StrategyConfig):
    """[prove.dsp]"""

    use_informal_proof: bool = Field(True, description="take the data set's informal proof as the draft when present")


class DraftSketchProve(ProofStrategy):
    name = "dsp"
    help = "draft → sketch → prove holes (automation, then the prover model) → assemble"
    # The views counted 'generate' for every run before strategies said otherwise; a
    # dsp run has no 'generate' samples, so its pass@k rows stay empty as before.
    candidate_stages = ("generate",)
    config_model = DspConfig

    def chain(self, ctx: RunContext, items: list[WorkItem], env: ChainEnv) -> Chain:
        from proofflow.flows.chains import Call, Work, asks
        from proofflow.tasks.ask import ask
        from proofflow.tasks.draft import given_drafts, plan_draft
        from proofflow.tasks.finalize import finalize
        from proofflow.tasks.sketch import plan_sketch

        names = env.names
        env.persist(given_drafts(ctx, items))  # a data set's own informal proof: no call to wait for
        yield asks(ask, ctx, plan_draft(ctx, items), names, "draft")
        yield asks(ask, ctx, plan_sketch(ctx, items), names, "sketch")
        yield from checks(ctx, items, env, "check")
        for item in items:
            yield from holes(ctx, item, "sketch", env)
        yield [Call(finalize, (ctx, items, names("finalize")), Work.LIGHT)]
