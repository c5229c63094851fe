"""The `search` strategy's stage task: a theorem's step search, a few expansions per task
run (each run's rows are stored when it returns), the proof assembled and checked."""

from __future__ import annotations

import time
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from proofflow.keys import sample_id
from proofflow.search import SearchBudget, assemble
from proofflow.search.runtime import proof_states, run_goal_search, search_config
from proofflow.search.stage import node_key
from proofflow.tasks.context import RunContext, StageOutput, WorkItem, to_json
from proofflow.tasks.formal_runtime import FormalRuntime, KnownChecks
from proofflow.tasks.sampling import tool_sample
from proofflow.verifiers.lean.proofstate import LeanError

PROOF_STAGE = "search_proof"   # the assembled proof (a candidate: checked and audited)
END_STAGE = "search_end"       # how a goal's search ended (its stop reason), so the chain stops
THEOREM = "theorem"            # the origin of a whole theorem's search


def end_id(ctx: RunContext, problem_id: str, origin: str) -> str:
    return sample_id(ctx.run_id, problem_id, END_STAGE, node_key(ctx.run_id, problem_id, origin, ()), 0)


def search_finished(ctx: RunContext, item: WorkItem) -> bool:
    """Whether the theorem's search has ended (stored end marker)."""
    return end_id(ctx, item.problem.id, THEOREM) in item.state.samples


def search_theorem(ctx: RunContext, item: WorkItem, wall_left: float, known: KnownChecks) -> StageOutput:
    cfg = search_config(ctx)
    out = StageOutput()
    item = item.copy()
    pid, problem = item.problem.id, item.formal
    states = proof_states(ctx.settings.prove, cfg)
    t0 = time.monotonic()
    root = states.initial_state(problem.header, problem.statement)
    end: dict[str, Any]
    if isinstance(root, LeanError):
        end = {"stop_reason": "no_goal", "error": root.error}
    else:
        budget = SearchBudget(max_expansions=cfg.max_expansions, wall_s=wall_left, max_tokens=cfg.max_tokens)
        got = run_goal_search(ctx, pid, THEOREM, root, states, item, cfg, budget, cfg.expansions_per_task)
        out.add(*got.rows)
        result = got.result
        out.figures.update(search_requests=got.requests, search_expansions_reused=got.reused)
        end = {"stop_reason": result.stop_reason, "expansions": result.expansions, "tokens": result.tokens,
               "tried": len(result.tried), "nodes": len(result.nodes), "seconds": round(time.monotonic() - t0, 3)}
        if result.tactics is not None:
            source = assemble(problem.statement, result.tactics)
            proved_node = node_key(ctx.run_id, pid, THEOREM, tuple(result.tactics))
            sid = sample_id(ctx.run_id, pid, PROOF_STAGE, proved_node, 0)
            row = item.state.samples.get(sid) or tool_sample(ctx, pid, sid, PROOF_STAGE, "search", source,
                                                             proved_node, 0, 0, prompt=problem.statement)
            out.add(row)
            item.add(row)
            rt = FormalRuntime(ctx, known, out)
            with rt.keep_on_failure():
                rt.check_sample(item, row, source)
            rt.finish()
            end["proof_sample_id"] = sid
        if result.stop_reason == "paused":
            return out
    root_id = node_key(ctx.run_id, pid, THEOREM, ())
    out.add(tool_sample(ctx, pid, end_id(ctx, pid, THEOREM), END_STAGE, "search", to_json(end), root_id, 0, 0))
    return out


@task(name="search", task_run_name="{label}", cache_policy=NO_CACHE)
def search_step(ctx: RunContext, items: list[WorkItem], wall_left: float, known: KnownChecks,
                label: str) -> StageOutput:
    """Up to `expansions_per_task` new expansions of each item's theorem search (stored
    ones are replayed without asking the model); the proof, when found, checked."""
    out = StageOutput()
    for item in items:
        out.extend(search_theorem(ctx, item, wall_left, known))
    return out


