"""The step search at run time: its settings, the proof-state programs (one pool per
process and settings, closed with the run's other resources), a goal's search with the
run's model, and dsp's step search on a hole (called by tasks/prove_holes.py)."""

from __future__ import annotations

from importlib import resources as package_files
from string import Template
from typing import Any

from proofflow.config import ProveConfig
from proofflow.keys import sample_id
from proofflow.search.best_first import Score, SearchBudget, SearchNode, cumulative_logprob
from proofflow.search.settings import SearchConfig
from proofflow.search.stage import STAGE, GoalSearch, ModelProposer, node_key, search_goal, stored_expansions
from proofflow.storage.records import SampleRow
from proofflow.tasks.context import RunContext, WorkItem
from proofflow.verifiers import registry
from proofflow.verifiers.lean.proofstate import LeanError, ProofStates, TacticState


def tactic_prompt(goals: str) -> str:
    """The `search` strategy's prompts/tactic.txt, filled (read as a file: importing the
    strategy package from here would be an import cycle with the shared hole stage)."""
    text = package_files.files("proofflow.strategies.search").joinpath("prompts", "tactic.txt").read_text()
    return Template(text).substitute(goals=goals)


def search_config(ctx: RunContext) -> SearchConfig:
    cfg = ctx.settings.prove.section("search", SearchConfig)
    assert isinstance(cfg, SearchConfig)
    return cfg


def mean_logprob(node: SearchNode) -> float:
    return node.logprob_sum / max(1, node.depth)


SCORES: dict[str, Score] = {"cumulative_logprob": cumulative_logprob, "mean_logprob": mean_logprob}


def proof_states(prove: ProveConfig, cfg: SearchConfig) -> ProofStates:
    """The proof-state programs for these settings (Lean only), one pool per process."""
    from proofflow.tasks import resources
    from proofflow.verifiers.lean.program import ProgramConfig, is_wasm_command
    from proofflow.verifiers.lean.toolchain import lean_command

    def make() -> ProofStates:
        if not registry.backend(prove.backend).proof_states:
            raise RuntimeError(f"the step search needs a backend with proof states (Lean), not {prove.backend!r}")
        command, cwd = lean_command(tuple(prove.lean_command), prove.lean_project_dir)
        # One process: a search asks one tactic at a time (wasm: 2-3 GB and ~30 s a start).
        config = ProgramConfig(lean_command=command, project_dir=cwd, timeout_s=cfg.tactic_timeout_s, workers=1,
                               memory_mb=prove.lean_memory_mb or 8192,
                               wasm=True if is_wasm_command(command) else None)
        return ProofStates(config)

    states: ProofStates = resources._get("proof_states", (prove, cfg), make, ProofStates.close)  # noqa: SLF001
    return states


def run_goal_search(ctx: RunContext, problem_id: str, origin: str, root: TacticState, states: ProofStates,
                    item: WorkItem, cfg: SearchConfig, budget: SearchBudget,
                    new_expansions: int | None) -> GoalSearch:
    """One goal's search with the run's model, reusing the expansions stored for it."""
    from proofflow.tasks import resources

    client = resources.model_client(ctx.settings.endpoint, ctx.settings.sampling, ctx.settings.reasoning)
    proposer = ModelProposer(ctx, problem_id, origin, cfg.k, client.complete,
                             stored_expansions(item.samples(STAGE)), params=client.sampling_params(),
                             new_expansions=new_expansions, prompt=lambda node: tactic_prompt(node.state.pp))
    return search_goal(ctx, problem_id, origin, root, states, proposer, budget, SCORES[cfg.score])


def dsp_step_search(prover: Any, base: SampleRow, source: str, hole: int, goal: str, before: int, n: int,
                    round_: int, result: Any) -> tuple[bool, str, Any, int]:
    """DSP+'s second step for a hole automation left open (tasks/prove_holes.py calls it
    between automation and the hole-proof model): a step search on the hole's goal; a
    closing tactic path becomes a `prove_hole` sample (model `search`) that fills the hole
    and is checked with the whole source like every attempt. Off unless
    `[prove.search] dsp_step_search` and the backend is Lean. Returns (closed, filled
    source, its check result, next attempt index)."""
    ctx, item = prover.ctx, prover.item
    cfg = search_config(ctx)
    if not cfg.dsp_step_search or not registry.backend(ctx.settings.prove.backend).proof_states:
        return False, source, result, n
    states = proof_states(ctx.settings.prove, cfg)
    holes = states.holes(item.formal.header, source)
    if isinstance(holes, LeanError) or hole >= len(holes) or len(holes) != before:
        return False, source, result, n  # the program's holes are not the text's: leave it to the model
    origin = f"{base.sample_id}#{hole}@{node_key('', '', source, ())}"
    budget = SearchBudget(max_expansions=cfg.dsp_max_expansions, wall_s=cfg.wall_s, max_tokens=cfg.max_tokens)
    got = run_goal_search(ctx, item.problem.id, origin, holes[hole], states, item, cfg, budget, None)
    prover.rt.out.add(*got.rows)
    item.add(*got.rows)
    if got.result.tactics is None:
        return False, source, result, n
    text = "\n".join(got.result.tactics)
    sid = sample_id(ctx.run_id, item.problem.id, "prove_hole", base.sample_id, n)
    if sid not in item.state.samples:
        prover.tool_sample(sid, "prove_hole", "search", text, base.sample_id, n, round_,
                           prompt=f"hole {hole}: {goal}"[:2000])
    closed, filled, new = prover.attempt(base, sid, source, hole, text, goal, before)
    return closed, filled, new, n + 1
