"""The Lean checker program (proofflow/verifiers/lean/Checker.lean) against a REAL Lean 4:
the wasm build scripts/test.sh installs (python -m proofflow.verifiers.lean.install).

Every case of this module is checked in ONE batch (program.check_batch: the header and
the requests in a file on a process's stdin), because a wasm Lean process costs 30-120 s
to start on this busy 2-core machine. The batch needs one more process per candidate that
runs code of its own (the macro and native_decide tricks: the program ends its process
after them, issue 20.1). The warm pool (LeanProgramChecker) is tested in test_lean_pool.py
and test_lean_isolation.py.
"""

from __future__ import annotations

import pytest

from proofflow.verifiers.formal import FormalProblem
from proofflow.verifiers.lean.install import find_wasm_lean
from proofflow.verifiers.lean.program import ProgramConfig, check_batch
from proofflow.verifiers.registry import audit
from proofflow.verifiers.verdict import Outcome

pytestmark = [pytest.mark.lean, pytest.mark.slow]

STMT = "theorem add_comm_nat (a b : Nat) : a + b = b + a := by"
P = FormalProblem(name="add_comm_nat", header="", statement=STMT, backend="lean")
FALSE = FormalProblem(name="false_claim", header="", statement="theorem false_claim : 2 + 2 = 5 := by", backend="lean")


def lean_command() -> tuple[str, ...]:
    wasm = find_wasm_lean()
    if wasm is None:  # scripts/test.sh installs it; a bare pytest run must fail loudly, not skip
        pytest.fail("the wasm Lean is not installed: run `python -m proofflow.verifiers.lean.install`")
    return (str(wasm.lean),)


def config(**kw) -> ProgramConfig:
    base = dict(lean_command=lean_command(), workers=1, timeout_s=120.0, start_timeout_s=900.0,
                version="4.28.0-pre+wasm", memory_mb=0)
    base.update(kw)
    return ProgramConfig(**base)


class BatchChecker:
    """Checks every source the module needs in one process, then answers from it."""

    def __init__(self, sources: list[tuple[FormalProblem, list[str]]]):
        self.results = {}
        for problem, srcs in sources:
            for src, res in zip(srcs, check_batch(config(), problem, srcs, version="4.28.0-pre+wasm")):
                self.results[(problem.name, src)] = res

    def check(self, problem: FormalProblem, src: str):
        return self.results[(problem.name, src)]


def verdict(ch, src: str, problem: FormalProblem = P):
    result = ch.check(problem, src)
    return result, audit(problem, src, result)


# ------------------------------------------------------------------ honest proofs pass

HONEST = {
    "tactic": STMT + "\n  omega\n",
    "term": "theorem add_comm_nat (a b : Nat) : a + b = b + a :=\n  Nat.add_comm a b\n",
    "helper_lemma": ("theorem my_helper (x y : Nat) : x + y = y + x := Nat.add_comm x y\n\n"
                     + STMT + "\n  exact my_helper a b\n"),
    "sorry_in_comments": ("-- a first try was `sorry`\n" + STMT + "\n  /- sorry -/\n  omega  -- not sorry\n"),
}


@pytest.mark.parametrize("case", sorted(HONEST))
def test_honest_proof_passes(checker, case):
    result, v = verdict(checker, HONEST[case])
    assert result.status == "complete", result
    assert v.outcome is Outcome.PASS, v.details
    assert result.axioms is not None and set(result.axioms) <= {"propext", "Classical.choice", "Quot.sound"}


# ------------------------------------------------------------------ every audit trick

TRICKS = {
    # name: (source, the reason the audit must give first or among its reasons)
    "sorry": (STMT + "\n  sorry\n", "hole"),
    "admit": (STMT + "\n  admit\n", "hole"),
    "synthetic_sorryAx": (STMT + "\n  exact sorryAx _ true\n", "hole"),
    "declared_axiom": ("axiom cheat : ∀ a b : Nat, a + b = b + a\n" + STMT + "\n  exact cheat a b\n",
                       "axiom_declared"),
    "native_decide": ("theorem add_comm_nat (a b : Nat) : a + b = b + a := by\n"
                      "  have : 2 + 2 = 4 := by native_decide\n  omega\n", "native_decide"),
    "changed_statement": ("theorem add_comm_nat (a b : Nat) : a + b = a + b := by\n  rfl\n", "statement_mismatch"),
    "renamed_plus_sorried_original": ("theorem add_comm_nat' (a b : Nat) : a + b = b + a := by\n  omega\n\n"
                                      + STMT + "\n  sorry\n", "hole"),
    "namespace": ("namespace Cheat\n" + STMT + "\n  omega\nend Cheat\n", "statement_missing"),
    "local_instance_changes_plus": ("local instance (priority := high) instAddNatCheat : Add Nat := ⟨fun _ _ => 0⟩\n"
                                    + STMT + "\n  rfl\n", "statement_type_mismatch"),
    "macro_tactic_is_sorry": ('macro "auto_proof" : tactic => `(tactic| sorry)\n' + STMT + "\n  auto_proof\n",
                              "notation_declared"),
    "implemented_by": ("def realAdd (a b : Nat) : Nat := a + b\n"
                       "@[implemented_by realAdd] def fakeAdd (a b : Nat) : Nat := b + a\n"
                       "theorem add_comm_nat (a b : Nat) : a + b = b + a := by\n"
                       "  have h : fakeAdd a b = b + a := rfl\n  omega\n", "implemented_by"),
    "skip_kernel_tc": ("set_option debug.skipKernelTC true in\n" + STMT + "\n  omega\n", "skip_kernel_tc"),
    "exact_search": (STMT + "\n  exact?\n", "search_tactic_left"),
}

# What the checker program itself must report for each trick (not only the text rules):
# the Lean-side fact, mapped to its reason in CheckResult.rejections / axioms / holes.
LEAN_SIDE = {
    "sorry": lambda r: r.holes and r.holes[0].goal.endswith("a + b = b + a"),
    "admit": lambda r: r.holes and r.holes[0].kind == "admit",
    # no `sorry` token for the text rules: Lean itself reports the declaration uses sorry
    "synthetic_sorryAx": lambda r: r.status == "incomplete",
    "declared_axiom": lambda r: r.axioms is not None and "cheat" in r.axioms,
    "native_decide": lambda r: "native_decide" in r.rejections or r.status == "error",
    "changed_statement": lambda r: "statement_type_mismatch" in r.rejections,
    "renamed_plus_sorried_original": lambda r: r.status == "incomplete",
    "namespace": lambda r: "statement_missing" in r.rejections,
    "local_instance_changes_plus": lambda r: "statement_type_mismatch" in r.rejections,
    "macro_tactic_is_sorry": lambda r: r.status == "incomplete" or (r.axioms is not None and "sorryAx" in r.axioms),
    "implemented_by": lambda r: "implemented_by" in r.rejections,
    "skip_kernel_tc": lambda r: "skip_kernel_tc" in r.rejections,
    "exact_search": lambda r: "search_tactic_left" in r.rejections,
}


@pytest.mark.parametrize("case", sorted(TRICKS))
def test_audit_trick_rejected(checker, case):
    src, reason = TRICKS[case]
    result, v = verdict(checker, src)
    assert v.outcome is Outcome.FAIL, (case, v.details, result)
    assert reason in v.details["reasons"], (case, v.details["reasons"], result)
    assert LEAN_SIDE[case](result), (case, result)


def test_namespace_trick_caught_only_inside_lean(checker):
    """The statement text occurs exactly once, so the text rules see nothing wrong; the
    theorem is `Cheat.add_comm_nat`, and Lean says the problem's name is missing."""
    src = TRICKS["namespace"][0]
    _, v = verdict(checker, src)
    assert v.details["reasons"] == ["statement_missing"]


# ------------------------------------------------------------------ holes, errors, isolation

def test_holes_carry_goals_with_hypotheses(checker):
    result, v = verdict(checker, HOLES)
    assert result.status == "incomplete" and v.reason == "hole"
    assert [(h.line, h.column) for h in result.holes] == [(2, 27), (3, 2)]
    assert "a b : Nat" in result.holes[1].goal and "h : a + 0 = a" in result.holes[1].goal
    assert result.holes[0].goal.endswith("⊢ a + 0 = a")


def test_errors_have_positions_relative_to_the_source(checker):
    result, v = verdict(checker, ERROR)
    assert result.status == "error" and v.reason == "compile_error"
    err = result.errors[0]
    assert (err.line, err.column) == (3, 2)


def test_failing_omega_reports_error(checker):
    src = FALSE.statement + "\n  omega\n"
    result, v = verdict(checker, src, FALSE)
    assert result.status == "error" and v.reason == "compile_error"
    assert "omega" in result.errors[0].text


def test_nothing_leaks_between_checks(checker):
    assert checker.check(P, LEAK_1).status == "complete"
    result = checker.check(P, LEAK_2)
    assert result.status == "error" and "leak_helper" in result.errors[0].text


HOLES = STMT + "\n  have h : a + 0 = a := by sorry\n  sorry\n"
ERROR = "-- line 1\n" + STMT + "\n  exact rfl\n"
LEAK_1 = "theorem leak_helper : True := trivial\n" + STMT + "\n  omega\n"
LEAK_2 = STMT + "\n  have := leak_helper\n  omega\n"


@pytest.fixture(scope="module")
def checker():
    return BatchChecker([
        (P, list(HONEST.values()) + [t[0] for t in TRICKS.values()] + [HOLES, ERROR, LEAK_1, LEAK_2]),
        (FALSE, [FALSE.statement + "\n  omega\n"]),
    ])
