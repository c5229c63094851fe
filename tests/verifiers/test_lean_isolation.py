"""One Lean candidate never changes another's verdict (issue 20.1), in the warm pool a prove
run checks with, against the REAL wasm Lean (scripts/test.sh installs it).

Before: in one process, a candidate that declared a macro made a later candidate's
`native_decide` kill the checker (node's stack in the message), and every later check was
`checker_crash`. Each check starts from the header's command state, which undoes what the
environment holds (declarations, syntax, macros, attributes, extensions); what it cannot
undo is process-global state that code a candidate runs can reach. So the program reports
such a candidate (`runs_code`) and its process ends after it (`recycle`); and a check whose
process dies after earlier checks is checked again on a fresh one, where only a repeated
crash is its own verdict.

One checker with one worker for the module (a wasm Lean process holds 2-3 GB and takes
30-120 s to start on this 2-core machine); every start is counted.
"""

from __future__ import annotations

import pytest

from proofflow.verifiers.formal import CheckResult, FormalProblem
from proofflow.verifiers.lean.install import find_wasm_lean
from proofflow.verifiers.lean.program import LeanProgramChecker, ProgramConfig
from proofflow.verifiers.registry import audit

# Each candidate that runs code costs a process start (30-120 s here, more under load).
pytestmark = [pytest.mark.lean, pytest.mark.slow, pytest.mark.timeout(2400)]

STMT = "theorem add_comm_nat (a b : Nat) : a + b = b + a := by"
P = FormalProblem(name="add_comm_nat", header="", statement=STMT, backend="lean")
HONEST = STMT + "\n  omega\n"
HONEST_TERM = "theorem add_comm_nat (a b : Nat) : a + b = b + a :=\n  Nat.add_comm a b\n"
HONEST_SET_OPTION_IN = "set_option maxHeartbeats 400000 in\nopen Nat in\n" + HONEST
# Redefines the built-in `omega` (the trigger): its own check fails, nothing after it changes.
MACRO_OMEGA = 'macro "omega" : tactic => `(tactic| sorry)\n' + HONEST
# After MACRO_OMEGA in one process this used to kill the checker.
NATIVE = STMT + "\n  have : 2 + 2 = 4 := by native_decide\n  omega\n"
LOCAL_INSTANCE = "local instance (priority := high) instAddNatCheat : Add Nat := ⟨fun _ _ => 0⟩\n" + STMT + "\n  rfl\n"
NAMESPACE = "namespace Cheat\n" + HONEST + "end Cheat\n"
# Ends the checker process from inside the elaborator: a crash wherever it runs.
EXIT = "#eval (IO.Process.exit 3 : IO Unit)\n" + HONEST


@pytest.fixture(scope="module")
def checker():
    wasm = find_wasm_lean()
    if wasm is None:  # scripts/test.sh installs it; a bare pytest run must fail loudly, not skip
        pytest.fail("the wasm Lean is not installed: run `python -m proofflow.verifiers.lean.install`")
    cfg = ProgramConfig(lean_command=(str(wasm.lean),), workers=1, timeout_s=120.0, start_timeout_s=900.0,
                        version="4.28.0-pre+wasm", memory_mb=0, wasm=True)
    with LeanProgramChecker(cfg) as ch:
        yield ch


def outcome(result: CheckResult, source: str) -> tuple[str, list[str]]:
    v = audit(P, source, result)
    return v.outcome.value, list(v.details.get("reasons", []))


def test_an_adversarial_sequence_in_one_pool_gets_every_verdict_right(checker):
    # (name, source, expected outcome, a reason the audit must give)
    sequence = [
        ("honest", HONEST, "pass", None),
        ("local_instance", LOCAL_INSTANCE, "fail", "statement_type_mismatch"),
        ("macro_omega", MACRO_OMEGA, "fail", "hole"),
        ("honest_after_macro_omega", HONEST, "pass", None),
        ("native_decide_after_macros", NATIVE, "fail", "native_decide"),
        ("set_option_in_open_in", HONEST_SET_OPTION_IN, "pass", None),
        ("namespace", NAMESPACE, "fail", "statement_missing"),
        ("honest_term_last", HONEST_TERM, "pass", None),
    ]
    got = []
    for name, source, want, reason in sequence:
        result = checker.check(P, source)
        assert result.status != "crash", (name, result.detail[:300])
        out, reasons = outcome(result, source)
        got.append((name, out))
        assert out == want and (reason is None or reason in reasons), (name, out, reasons, result.detail[:300])
    # Each candidate that ran code of its own ended its process; nothing else did.
    assert checker.recycled_after_code == 2, checker.stats
    assert checker.rechecks == 0


def test_a_candidate_that_crashes_the_checker_costs_only_itself(checker):
    passes = checker.check(P, HONEST)  # a warm process with a check behind it
    assert outcome(passes, HONEST)[0] == "pass"
    starts, rechecks = checker.starts, checker.rechecks
    result = checker.check(P, EXIT)
    # It died on a warm process, was checked again on a fresh one, died again: its own verdict.
    assert result.status == "crash", (result.status, result.detail[:300])
    assert outcome(result, EXIT)[0] == "error"
    assert checker.rechecks == rechecks + 1 and checker.starts == starts + 1, checker.stats
    assert outcome(checker.check(P, HONEST_TERM), HONEST_TERM)[0] == "pass"
