"""Proof states (ProofState.lean driven by verifiers/lean/proofstate.py) against the REAL
wasm Lean 4 that scripts/test.sh installs: goals after intro / constructor / cases /
induction, an error for a bad tactic, a state expanded twice gives the same children, and
a tactic that does not answer in time is stopped by the timeout, after which the store
still serves its states (recomputed on the fresh process from their tactic paths).

One store with one process for the module (a wasm Lean process takes ~25-120 s to start
here and holds 2-3 GB); the timeout case runs last and pays one more start.
"""

from __future__ import annotations

import pytest

from proofflow.verifiers.lean.install import find_wasm_lean
from proofflow.verifiers.lean.program import ProgramConfig
from proofflow.verifiers.lean.proofstate import LeanError, ProofFinished, ProofStates, TacticState

pytestmark = [pytest.mark.lean, pytest.mark.slow]

SWAP = "theorem and_swap (p q : Prop) (h : p ∧ q) : q ∧ p := by"
IMP = "theorem imp_swap (p q : Prop) : p ∧ q → q ∧ p := by"
ADD0 = "theorem add_zero' (n : Nat) : 0 + n = n := by"
TIMEOUT_S = 15.0


@pytest.fixture(scope="module")
def states():
    wasm = find_wasm_lean()
    if wasm is None:  # scripts/test.sh installs it; a bare pytest run must fail loudly, not skip
        pytest.fail("the wasm Lean is not installed: run `python -m proofflow.verifiers.lean.install`")
    cfg = ProgramConfig(lean_command=(str(wasm.lean),), workers=1, timeout_s=TIMEOUT_S, start_timeout_s=900.0,
                        version="4.28.0-pre+wasm", memory_mb=1500, wasm=True)
    with ProofStates(cfg) as st:
        yield st


def state(result: object) -> TacticState:
    assert isinstance(result, TacticState), result
    return result


def test_intro_and_cases_show_the_new_hypotheses(states):
    init = state(states.initial_state("", IMP))
    assert init.goals == ("p q : Prop\n⊢ p ∧ q → q ∧ p",)
    after_intro = state(states.run_tac(init, "intro h"))
    assert after_intro.goals == ("p q : Prop\nh : p ∧ q\n⊢ q ∧ p",)
    after_cases = state(states.run_tac(after_intro, "cases h"))
    assert after_cases.num_goals == 1
    assert "left✝ : p" in after_cases.pp and "right✝ : q" in after_cases.pp and "⊢ q ∧ p" in after_cases.pp
    assert states.tactics(after_cases) == ["intro h", "cases h"]


def test_constructor_splits_the_goal_and_the_proof_finishes(states):
    init = state(states.initial_state("", SWAP))
    split = state(states.run_tac(init, "constructor"))
    assert split.num_goals == 2
    assert split.goals[0].startswith("case left") and split.goals[0].endswith("⊢ q")
    assert split.goals[1].startswith("case right") and split.goals[1].endswith("⊢ p")
    one = state(states.run_tac(split, "exact h.2"))
    assert one.num_goals == 1 and one.goals[0].endswith("⊢ p")
    done = states.run_tac(one, "exact h.1")
    assert isinstance(done, ProofFinished)
    assert states.tactics(done) == ["constructor", "exact h.2", "exact h.1"]


def test_induction_gives_the_zero_and_successor_cases(states):
    init = state(states.initial_state("", ADD0))
    split = state(states.run_tac(init, "induction n"))
    assert split.num_goals == 2
    assert split.goals[0].startswith("case zero") and split.goals[0].endswith("⊢ 0 + 0 = 0")
    assert split.goals[1].startswith("case succ") and "+ 1" in split.goals[1], split.goals[1]
    assert isinstance(states.run_tac(init, "induction n with\n| zero => rfl\n| succ k ih => omega"), ProofFinished)


def test_a_bad_tactic_is_an_error_and_sorry_is_not_a_proof(states):
    init = state(states.initial_state("", SWAP))
    bad = states.run_tac(init, "exact bogus_lemma")
    assert isinstance(bad, LeanError) and bad.kind == "tactic" and "bogus_lemma" in bad.error
    unparsable = states.run_tac(init, "exact (")
    assert isinstance(unparsable, LeanError) and "parse error" in unparsable.error
    assert isinstance(states.run_tac(init, "sorry"), LeanError)
    wrong = states.run_tac(init, "exact h")   # h : p ∧ q is not q ∧ p
    assert isinstance(wrong, LeanError) and "mismatch" in wrong.error.lower()


def test_a_state_expanded_twice_gives_the_same_children(states):
    init = state(states.initial_state("", SWAP))
    first = [states.run_tac(init, t) for t in ("constructor", "cases h", "exact ⟨h.2, h.1⟩")]
    second = [states.run_tac(init, t) for t in ("constructor", "cases h", "exact ⟨h.2, h.1⟩")]
    assert first == second
    assert isinstance(first[2], ProofFinished)


def test_every_hole_of_a_sketch_is_a_state(states):
    sketch = ("theorem two_holes (a b : Nat) (h : a = b) : b = a ∧ a + 0 = a := by\n"
              "  have h1 : b = a := by sorry\n  exact ⟨h1, by sorry⟩\n")
    holes = states.holes("", sketch)
    assert isinstance(holes, list) and len(holes) == 2
    assert holes[0].goals[0].endswith("⊢ b = a") and "h : a = b" in holes[0].goals[0]
    assert holes[1].goals[0].endswith("⊢ a + 0 = a") and "h1 : b = a" in holes[1].goals[0]
    assert isinstance(states.run_tac(holes[0], "exact h.symm"), ProofFinished)
    assert isinstance(states.run_tac(holes[1], "omega"), ProofFinished)


def test_a_tactic_past_the_timeout_is_stopped_and_the_store_survives_the_respawn(states):
    init = state(states.initial_state("", SWAP))
    split = state(states.run_tac(init, "constructor"))
    pid_before = states.pool.workers()[0].program.child.pid
    # `sleep` never answers within the timeout (a stand-in for a tactic that loops
    # without allocating, which Lean's heartbeat limit would not catch).
    stuck = states.run_tac(split, "sleep 600000")
    assert isinstance(stuck, LeanError) and stuck.kind == "timeout", stuck
    assert states.stats.timeouts == 1
    # The killed process's states are recomputed on a fresh one from their tactic paths.
    replays = states.stats.replays
    again = state(states.run_tac(split, "exact h.2"))
    assert again.goals[0].endswith("⊢ p")
    assert states.stats.replays == replays + 1      # `constructor` replayed on the new process
    assert states.pool.workers()[0].program.child.pid != pid_before
    assert isinstance(states.run_tac(again, "exact h.1"), ProofFinished)
