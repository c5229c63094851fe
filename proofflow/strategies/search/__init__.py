"""search: ReProver-style best-first step search for whole theorems (docs/proving.md,
"Tactic-level proving"). The model proposes K next tactics for the best open proof state
(one request, n = K, with log-probabilities); the states come from the proof-state program
on the real Lean (verifiers/lean/proofstate.py); a proved tactic path is assembled into a
proof (stage `search_proof`) that the checker and its audit judge like any other.

Settings: `[prove.search]` (search/settings.py SearchConfig). The `dsp` strategy also uses them for its step
search on the holes automation left open (`dsp_step_search`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from proofflow.search.settings import SearchConfig
from proofflow.storage.records import utcnow
from proofflow.strategies.registry import Chain, ChainEnv, Strategy
from proofflow.strategies.shared.proofs import proof_identity

if TYPE_CHECKING:
    from datetime import datetime

    from proofflow.config import Settings
    from proofflow.tasks.context import RunContext, WorkItem


def searching_s(item: WorkItem, since: datetime) -> float:
    """Seconds the goal's search has been running in this process: since its first
    expansion answered after `since` (the chain's start). The wall budget counts from there
    rather than from the chain's start, so neither the wait for a free problem slot nor a
    proof-state program's start-up (30-300 s on a loaded machine here, and paid again on a
    resume) uses it up before the first expansion; a resume counts from zero again."""
    new = [s.created_at for s in item.samples("search") if s.created_at >= since]
    return (utcnow() - min(new)).total_seconds() if new else 0.0


class StepSearch(Strategy):
    name = "search"
    kind = "proof"
    help = "best-first step search: the model proposes K tactics per proof state, best cumulative log-probability first"
    config_model = SearchConfig
    candidate_stages = ("search_proof",)

    def identity_keys(self, settings: Settings) -> dict[str, Any]:
        cfg = self.config(settings)
        assert isinstance(cfg, SearchConfig)
        keys = proof_identity(self.name, settings)
        keys.update(search_k=cfg.k, search_max_expansions=cfg.max_expansions, search_max_tokens=cfg.max_tokens,
                    search_score=cfg.score)
        return keys

    def chain(self, ctx: RunContext, items: list[WorkItem], env: ChainEnv) -> Chain:
        from proofflow.flows.chains import Call, Work
        from proofflow.strategies.search.tasks import search_finished, search_step
        from proofflow.tasks.finalize import finalize

        cfg = self.config(ctx.settings)
        assert isinstance(cfg, SearchConfig)
        for item in items:
            started = utcnow()
            # Each task run adds at most expansions_per_task expansions; one more run ends it.
            for step in range(cfg.max_expansions // cfg.expansions_per_task + 2):
                if search_finished(ctx, item):
                    break
                wall_left = max(0.0, cfg.wall_s - searching_s(item, started))
                label = env.names("search", item.problem.id) + f" · {step + 1}"
                yield [Call(search_step, (ctx, [item], wall_left, env.known, label))]
        yield [Call(finalize, (ctx, items, env.names("finalize")), Work.LIGHT)]

