"""What the proof strategies share: their identity keys and the APOLLO-style hole repair
(mask the failing steps of a parent, close the holes with automation then the prover
model, reassemble; the stage itself is tasks/prove_holes.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from proofflow.strategies.registry import Chain, ChainEnv, Strategy

if TYPE_CHECKING:
    from proofflow.config import Settings
    from proofflow.tasks.context import RunContext, WorkItem


def proof_identity(name: str, settings: Settings) -> dict[str, Any]:
    """The keys every proof strategy adds to a run's identity (the keys and values runs
    stored before strategies had folders, so those runs resume)."""
    from proofflow.strategies.registry import strategy

    p = settings.prove
    # Two keys live in the strategies' own sections now ([prove.whole], [prove.dsp]); every
    # proof run's identity keeps both, with the same values, so stored runs resume.
    whole, dsp = strategy("whole", "proof").config(settings), strategy("dsp", "proof").config(settings)
    return {
        "strategy": name, "samples": p.samples,
        "repair_rounds": p.repair_rounds, "repair_depth": p.repair_depth,
        "repair_candidates": whole.model_dump()["repair_candidates"], "automation": p.automation(),
        "hole_budget": p.hole_budget, "stop_on_first_complete": p.stop_on_first_complete,
        "use_informal_proof": dsp.model_dump()["use_informal_proof"],
    }


class ProofStrategy(Strategy):
    """A proof strategy: `kind` proof and the proof identity keys; the subclass writes
    its chain."""

    kind = "proof"

    def identity_keys(self, settings: Settings) -> dict[str, Any]:
        return proof_identity(self.name, settings)


def holes(ctx: RunContext, item: WorkItem, mode: str, env: ChainEnv) -> Chain:
    """prove holes, one task per parent (sketch or failing proof), so each parent's masks,
    attempts and model answers are stored when that parent is done, and the next parent
    sees whether the problem is solved already."""
    from proofflow.flows.chains import Call
    from proofflow.tasks.formal_runtime import solved
    from proofflow.tasks.prove_holes import open_parents, prove_holes

    parents = open_parents(ctx, item, mode)
    for i, parent in enumerate(parents, 1):
        if solved(item) and ctx.settings.prove.stop_on_first_complete:
            return
        suffix = f" · {i}/{len(parents)}" if len(parents) > 1 else ""
        label = env.names(f"prove holes ({mode})") + suffix
        yield [Call(prove_holes, (ctx, [item], mode, [parent], env.known, label))]


def checks(ctx: RunContext, items: list[WorkItem], env: ChainEnv, stage: str) -> Chain:
    """check the items' unchecked candidates, a batch of them per task (tasks/check_proofs.py
    says why and how big). With stop_on_first_complete: one step per round of batches, an
    item's next batch only while it is unsolved; without: every batch in one step."""
    from proofflow.flows.chains import Call
    from proofflow.tasks.check_proofs import check_proofs, plan_batches
    from proofflow.tasks.formal_runtime import solved

    planned = [(item, plan_batches(item)) for item in items]

    def call(item: WorkItem, batches: list[list[str]], k: int) -> Call:
        label = env.names(stage, item.problem.id if len(items) > 1 else None)
        if len(batches) > 1:
            label += f" · batch {k + 1}/{len(batches)}"
        return Call(check_proofs, (ctx, [item], env.known, label, batches[k]))

    if not ctx.settings.prove.stop_on_first_complete:
        yield [call(item, batches, k) for item, batches in planned for k in range(len(batches))]
        return
    for k in range(max((len(b) for _, b in planned), default=0)):
        yield [call(item, batches, k) for item, batches in planned if k < len(batches) and not solved(item)]
