"""The best-first step search (proofflow/search/) on the REAL wasm Lean: proof states from
ProofState.lean, the tactics from a recorded tactic policy (a stand-in for the model, named
as such: a fixed table from the goal being proved to proposed tactics with
log-probabilities), the assembled proof checked by the real checker program and its audit.
Then the search as a stage: the expansions are sample rows with deterministic ids, the tree
is stored in a real DuckDB file, and a rerun over the stored rows asks the model nothing.

Lean processes: one proof-state program and one checker for the module.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from proofflow.config import load_settings
from proofflow.llm.client import Choice, Request, Response
from proofflow.search import Pause, Proposal, SearchBudget, SearchNode, assemble, best_first_search
from proofflow.search.stage import ModelProposer, node_key, search_goal, stored_expansions, tactic_of
from proofflow.storage.db import Store
from proofflow.storage.records import SampleRow
from proofflow.tasks.context import RunContext
from proofflow.verifiers.formal import FormalProblem
from proofflow.verifiers.lean.install import find_wasm_lean
from proofflow.verifiers.lean.program import LeanProgramChecker, ProgramConfig
from proofflow.verifiers.lean.proofstate import ProofStates, TacticState
from proofflow.verifiers.registry import audit

pytestmark = [pytest.mark.lean, pytest.mark.slow]

AND_SWAP = FormalProblem(name="and_swap", header="", backend="lean",
                         statement="theorem and_swap (p q : Prop) : p ∧ q → q ∧ p := by")
ZERO_ADD = FormalProblem(name="zero_add'", header="", backend="lean",
                         statement="theorem zero_add' (n : Nat) : 0 + n = n := by")
OR_SWAP = FormalProblem(name="or_swap", header="", backend="lean",
                        statement="theorem or_swap (p q : Prop) : p ∨ q → q ∨ p := by")

# The recorded tactic policy: the target of the first goal -> proposed tactics with their
# log-probabilities (what a model would have said, fixed so the test knows the outcome).
POLICY: dict[str, list[tuple[str, float]]] = {
    "p ∧ q → q ∧ p": [("exact fun h => h", -0.05), ("intro h", -0.2), ("simp", -3.0)],
    "q ∧ p": [("cases h", -0.3), ("constructor", -0.4), ("exact h", -0.1)],
    "q": [("exact h.2", -0.5), ("assumption", -0.6)],
    "p": [("exact h.1", -0.5), ("assumption", -0.6)],
    "0 + n = n": [("rfl", -0.1), ("omega", -0.7), ("simp", -1.5)],
    "p ∨ q → q ∨ p": [("intro h", -0.1), ("intro hpq", -0.2)],
    "q ∨ p": [("cases h", -0.2), ("cases hpq", -0.3), ("exact h", -0.1)],
}


def target(state: TacticState) -> str:
    return state.goals[0].rsplit("⊢ ", 1)[-1].strip()


def recorded_policy(node: SearchNode) -> list[Proposal]:
    return [Proposal(t, lp, tokens=3) for t, lp in POLICY.get(target(node.state), [])]


@pytest.fixture(scope="module")
def lean() -> tuple[ProofStates, LeanProgramChecker]:
    wasm = find_wasm_lean()
    if wasm is None:  # scripts/test.sh installs it; a bare pytest run must fail loudly, not skip
        pytest.fail("the wasm Lean is not installed: run `python -m proofflow.verifiers.lean.install`")
    cfg = ProgramConfig(lean_command=(str(wasm.lean),), workers=1, timeout_s=30.0, start_timeout_s=900.0,
                        version="4.28.0-pre+wasm", memory_mb=1500, wasm=True)
    with ProofStates(cfg) as states, LeanProgramChecker(cfg) as checker:
        yield states, checker


def test_the_search_proves_core_lean_theorems_and_the_assembled_proofs_pass_the_audit(lean):
    states, checker = lean
    for problem, expected in ((AND_SWAP, None), (ZERO_ADD, ["omega"])):
        root = states.initial_state(problem.header, problem.statement)
        assert isinstance(root, TacticState), root
        result = best_first_search(root, states, recorded_policy, SearchBudget(max_expansions=10, wall_s=120))
        assert result.stop_reason == "proved", (problem.name, result.stop_reason, result.tried)
        assert result.tactics is not None
        if expected is not None:
            assert result.tactics == expected
        source = assemble(problem.statement, result.tactics)
        verdict = audit(problem, source, checker.check(problem, source))
        assert verdict.outcome.value == "pass", (source, verdict)
    # and_swap: `exact fun h => h` (the most likely) fails, `intro h` opens the state
    # `h : p ∧ q ⊢ q ∧ p`, where `exact h` fails and `cases h` leads on.
    outcomes = {t.tactic: t.outcome for t in result.tried}
    assert outcomes["rfl"] == "error"


def test_identical_states_are_merged_and_the_budget_stops_the_search(lean):
    states, _ = lean
    root = states.initial_state("", OR_SWAP.statement)
    assert isinstance(root, TacticState)
    # `intro h` and `intro hpq` give different states (names differ); both `cases`
    # lead to goals no recorded tactic proves: the search runs out of expansions.
    result = best_first_search(root, states, recorded_policy, SearchBudget(max_expansions=3, wall_s=120))
    assert result.stop_reason == "expansions" and result.expansions == 3
    assert not result.proved
    # A policy proposing two tactics that reach the same state: the second one is merged.
    def twice(node: SearchNode) -> list[Proposal]:
        return [Proposal("intro h", -0.1), Proposal("(intro h)", -0.2)] if node.depth == 0 else []
    merged = best_first_search(root, states, twice, SearchBudget(max_expansions=5, wall_s=60))
    assert [t.outcome for t in merged.tried[:2]] == ["open", "duplicate"]
    assert merged.tried[1].child == merged.tried[0].child
    assert merged.stop_reason == "exhausted" and len(merged.nodes) == 2


def test_wall_time_and_token_budgets_stop_the_search(lean):
    states, _ = lean
    root = states.initial_state("", AND_SWAP.statement)
    assert isinstance(root, TacticState)
    ticks = iter(range(1000))
    by_time = best_first_search(root, states, recorded_policy, SearchBudget(max_expansions=50, wall_s=2.5),
                                clock=lambda: float(next(ticks)))
    assert by_time.stop_reason == "wall_time" and by_time.expansions <= 2
    by_tokens = best_first_search(root, states, recorded_policy,
                                  SearchBudget(max_expansions=50, wall_s=60, max_tokens=9))
    assert by_tokens.stop_reason == "tokens" and by_tokens.tokens >= 9 and by_tokens.expansions == 1


class RecordedTacticModel:
    """A stand-in for the model server: answers a search request from the recorded policy
    (the goal is read back from the prompt), counting the requests it gets."""

    def __init__(self) -> None:
        self.requests: list[Request] = []

    def __call__(self, request: Request) -> Response:
        self.requests.append(request)
        goal = request.prompt.split("Current proof state:\n\n", 1)[1].split("\n\nReply with", 1)[0]
        proposals = POLICY.get(goal.rsplit("⊢ ", 1)[-1].strip(), [])[: request.n]
        proposals += [("skip", -9.0)] * (request.n - len(proposals))
        choices = [Choice(text=f"```lean\n{t}\n```", finish_reason="stop", completion_tokens=5, tokens_exact=True,
                          logprob=lp) for t, lp in proposals]
        return Response(call_id="c_" + uuid.uuid4().hex[:8], endpoint="recorded", model="recorded-policy",
                        seed=request.seed, choices=choices, prompt_tokens=20, completion_tokens=5 * request.n,
                        latency_s=0.0, cost=None)


def test_the_stage_stores_the_tree_and_a_rerun_asks_the_model_nothing(lean, tmp_path: Path):
    states, _ = lean
    store = Store(tmp_path / "search.duckdb")
    ctx = RunContext("run-search-test", "search-test", "examples", load_settings(None, {}))
    pid = "p_and_swap"
    root = states.initial_state("", AND_SWAP.statement)
    assert isinstance(root, TacticState)
    budget = SearchBudget(max_expansions=10, wall_s=120)

    # First pass, paused after 2 new expansions (as a killed run would stop): rows stored.
    model = RecordedTacticModel()
    first = ModelProposer(ctx, pid, "theorem", 3, model, {}, new_expansions=2)
    paused = search_goal(ctx, pid, "theorem", root, states, first, budget)
    assert paused.result.stop_reason == "paused" and len(model.requests) == 2
    store.write(paused.rows)

    # Resume from what is stored: the 2 stored expansions are reused, only new ones asked.
    _, rows = store.query("SELECT sample_id FROM samples WHERE stage = 'search'")
    assert len(rows) == 6
    with store.connect() as con:
        samples = [SampleRow(**dict(zip(SampleRow.columns(), r)))
                   for r in con.execute(f"SELECT {', '.join(SampleRow.columns())} FROM samples").fetchall()]
    assert all(s.logprob is not None for s in samples)
    model2 = RecordedTacticModel()
    second = ModelProposer(ctx, pid, "theorem", 3, model2, stored_expansions(samples))
    done = search_goal(ctx, pid, "theorem", root, states, second, budget)
    assert done.result.stop_reason == "proved", done.result.tried
    assert second.reused == 2
    asked = {r.context["stage"] for r in model2.requests}
    assert asked <= {"search"} and len(model2.requests) == done.requests == done.result.expansions - 2
    store.write(done.rows)

    # Every expansion's samples have the expanded state as parent; the ids are deterministic.
    expected_root = node_key(ctx.run_id, pid, "theorem", ())
    _, kids = store.query("SELECT count(*) FROM samples WHERE parent_id = ?", [expected_root])
    assert kids[0][0] == 3
    # SQL answers "which tactics were tried on this goal and what did they do".
    cols, tried = store.query(
        "SELECT tactic, status, error, goals FROM v_search_tactics "
        "WHERE parent_node_id = ? ORDER BY logprob DESC", [expected_root])
    assert [t[0] for t in tried] == ["exact fun h => h", "intro h", "simp"]
    assert tried[0][1] == "error" and "mismatch" in tried[0][2].lower() and tried[1][1] == "open"
    assert "⊢ q ∧ p" in json.loads(tried[1][3])[0]
    _, proved = store.query("SELECT count(*) FROM search_nodes WHERE status = 'proved'")
    assert proved[0][0] == 1


def test_tactic_extraction_takes_one_line_of_the_first_block():
    assert tactic_of("```lean\nintro h\ncases h\n```") == "intro h"
    assert tactic_of("Tactic: `omega`") == "omega"
    assert tactic_of("by simp") == "simp"
    assert tactic_of("") == ""


def test_pause_is_a_stop_reason():
    root = TacticState(pp="⊢ True", id=0, goals=("⊢ True",))

    def stop(node: SearchNode) -> list[Proposal]:
        raise Pause

    class NoLean:
        def run_tac(self, state, tactic):  # pragma: no cover - never reached
            raise AssertionError

        def tactics(self, state):  # pragma: no cover
            return []
    assert best_first_search(root, NoLean(), stop, SearchBudget()).stop_reason == "paused"


def test_the_wall_budget_counts_from_the_first_expansion_of_this_process_not_the_chain_start():
    """A proof-state start-up (minutes on a loaded machine) or a resume's stored
    expansions do not use up `wall_s` before the search has asked anything."""
    from datetime import datetime, timedelta

    from proofflow.flows.prove_spec import load_proof_problems
    from proofflow.storage.records import utcnow
    from proofflow.strategies.search import searching_s
    from proofflow.tasks.context import WorkItem

    item = WorkItem(load_proof_problems("lean-examples", load_settings(None, {"prove.backend": "lean"}))[0])
    started = utcnow() - timedelta(minutes=2)  # the chain's start, then the proof-state program's

    def expansion(idx: int, at: datetime) -> None:
        row = SampleRow(f"s{idx}", "r", item.problem.id, "search", "n_root", idx, 0, None, "m", None, None, None,
                        "p", "omega", "stop", 1, 1, True, 0.0, None, created_at=at)
        item.state.samples[row.sample_id] = row

    assert searching_s(item, started) == 0.0
    expansion(0, started - timedelta(minutes=30))  # stored by an earlier (killed) process
    assert searching_s(item, started) == 0.0
    expansion(1, utcnow() - timedelta(seconds=40))  # the first answer in this process
    expansion(2, utcnow())
    assert 40.0 <= searching_s(item, started) < 100.0
