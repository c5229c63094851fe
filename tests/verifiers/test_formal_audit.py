"""The audit and the hole helpers on their own: every rejection reason is reachable,
and nothing but a clean, complete, on-statement, axiom-free result passes."""

from __future__ import annotations

import pytest

from proofflow.verifiers.formal import (
    REJECTION_REASONS,
    CacheKey,
    CheckResult,
    FormalProblem,
    Hole,
    Message,
    VerdictCache,
)
from proofflow.verifiers.registry import (
    audit,
    check_cached,
    fill_hole,
    mask_failing_lines,
    split_holes,
)
from proofflow.verifiers.registry import policy as audit_policy
from proofflow.verifiers.verdict import Outcome

LEAN = FormalProblem(
    name="mathd_algebra_10",
    header="import Mathlib\n",
    statement="theorem mathd_algebra_10 (x : ℝ) (h : 2 * x = 4) : x = 2 := by",
    backend="lean",
)
LEAN_OK = "theorem mathd_algebra_10 (x : ℝ) (h : 2 * x = 4) : x = 2 := by\n  linarith\n"


def ok(axioms=("propext",), **kw) -> CheckResult:
    return CheckResult(status="complete", backend="lean", version="4.9.0", axioms=list(axioms), **kw)


def reasons(src, result=None, problem=LEAN, policy=None):
    v = audit(problem, src, result or ok(), policy)
    return v.outcome, v.details["reasons"]


def test_clean_lean_proof_passes():
    assert reasons(LEAN_OK) == (Outcome.PASS, [])
    # whitespace differences in the statement are fine; term-mode `:=` is fine
    assert reasons("theorem  mathd_algebra_10 (x : ℝ)\n   (h : 2 * x = 4) : x = 2 := by linarith")[0] is Outcome.PASS


@pytest.mark.parametrize(
    "src,reason",
    [
        (LEAN_OK.replace("linarith", "native_decide"), "native_decide"),
        ("@[implemented_by foo] def bar := 1\n" + LEAN_OK, "implemented_by"),
        ('@[extern "c_fn"] def bar : Nat := 1\n' + LEAN_OK, "extern"),
        ("set_option debug.skipKernelTC true in\n" + LEAN_OK, "skip_kernel_tc"),
        (LEAN_OK.replace("linarith", "exact?"), "search_tactic_left"),
        ('local notation "ℝ" => ℕ\n' + LEAN_OK, "notation_declared"),
        ("axiom cheat : False\n" + LEAN_OK, "axiom_declared"),
        ("variable (cheat : False)\n" + LEAN_OK, "variable_declared"),
        (LEAN_OK.replace("x = 2 :=", "x = 3 :="), "statement_mismatch"),
        ("theorem other : True := trivial\n", "statement_missing"),
        (LEAN_OK + "\n" + LEAN_OK, "theorem_redefined"),
        ("def Real := ℕ\n" + LEAN_OK.replace("ℝ", "Real"), "statement_mismatch"),
        (LEAN_OK.replace("linarith", "sorry"), "hole"),
    ],
)
def test_lean_rejections(src, reason):
    outcome, rs = reasons(src)
    assert outcome is Outcome.FAIL and reason in rs


def test_name_redefined():
    p = FormalProblem("t", "", "theorem t (n : ℕ) : myfun n = n := by", "lean")
    src = "def myfun (n : ℕ) := n\ntheorem t (n : ℕ) : myfun n = n := by\n  rfl\n"
    assert "name_redefined" in reasons(src, problem=p)[1]


def test_comments_do_not_count():
    # the statement inside a comment is not the statement; native_decide in a comment is harmless
    src = "-- theorem mathd_algebra_10 (x : ℝ) (h : 2 * x = 4) : x = 2 := by\n/- native_decide -/\n" + LEAN_OK
    assert reasons(src) == (Outcome.PASS, [])
    assert reasons("/- " + LEAN_OK + " -/")[1] == ["statement_missing"]


def test_axioms_and_outcomes():
    assert reasons(LEAN_OK, ok(axioms=["propext", "sorryAx"]))[1] == ["nonstandard_axiom"]
    assert reasons(LEAN_OK, ok(axioms=["propext", "Classical.choice", "Quot.sound"]))[0] is Outcome.PASS
    # axioms not reported: never a pass
    assert (
        audit(LEAN, LEAN_OK, ok(axioms=None) if False else CheckResult("complete", "lean", "x")).outcome
        is Outcome.ERROR
    )
    assert audit(LEAN, LEAN_OK, CheckResult("timeout", "lean", "x")).outcome is Outcome.TIMEOUT
    assert audit(LEAN, LEAN_OK, CheckResult("crash", "lean", "x")).outcome is Outcome.ERROR
    err = CheckResult("error", "lean", "x", messages=[Message("error", "unknown identifier", 2, 2)])
    v = audit(LEAN, LEAN_OK, err)
    assert v.reason == "compile_error" and "line 2, column 2" in v.feedback
    inc = CheckResult("incomplete", "lean", "x", holes=[Hole(2, 2, "x : ℝ\n⊢ x = 2")])
    assert audit(LEAN, LEAN_OK, inc).reason == "hole"


def test_policy_switches():
    src = LEAN_OK.replace("linarith", "native_decide")
    assert reasons(src, policy=audit_policy("lean", reject_native_decide=False))[0] is Outcome.PASS


def test_coq_text_rules():
    p = FormalProblem("t", "", "Theorem t : True.", "coq")
    base = "Theorem t : True.\nProof. exact I. Qed.\n"
    coq_ok = CheckResult("complete", "coq", "8.16.1", axioms=[])
    assert reasons(base, coq_ok, p) == (Outcome.PASS, [])
    for prefix, reason in [
        ("Unset Guard Checking.\n", "kernel_check_bypassed"),
        ("Parameter cheat : False.\n", "axiom_declared"),
        ("Notation \"'True'\" := False.\n", "notation_declared"),
        ("Load foo.\n", "session_command"),
    ]:
        assert reason in reasons(prefix + base, coq_ok, p)[1]
    strict = audit_policy("coq", allowed_requires=frozenset({"Lia"}))
    assert "unexpected_require" in reasons("Require Import Classical.\n" + base, coq_ok, p, strict)[1]
    assert reasons("Require Import Lia.\n" + base, coq_ok, p, strict)[0] is Outcome.PASS


def test_every_reason_is_documented():
    for r in [
        "compile_error",
        "hole",
        "statement_missing",
        "statement_mismatch",
        "theorem_redefined",
        "name_redefined",
        "nonstandard_axiom",
        "variable_declared",
        "statement_type_mismatch",
        "axiom_declared",
        "native_decide",
        "implemented_by",
        "extern",
        "skip_kernel_tc",
        "kernel_check_bypassed",
        "search_tactic_left",
        "notation_declared",
        "session_command",
        "unexpected_require",
        "axioms_unknown",
        "timeout",
        "checker_crash",
    ]:
        assert r in REJECTION_REASONS


def test_lean_split_fill_and_mask():
    src = (
        "theorem t (x : ℕ) (h : x = 2) : x + x = 4 := by\n"
        "  have h1 : x + x = 2 + 2 := by sorry\n"
        "  have h2 : 2 + 2 = 4 := by\n"
        "    norm_num\n"
        "    bogus_tactic\n"
        "  omega\n"
    )
    holes = split_holes(src, "lean")
    assert [(h.line, h.kind) for h in holes] == [(2, "sorry")]
    filled = fill_hole(src, 0, "subst h\nrfl", "lean")
    assert "by subst h\n" in filled and filled.split("\n")[2].strip() == "rfl"
    masked = mask_failing_lines(src, [Message("error", "unknown tactic", 5, 4)], "lean")
    assert "have h2 : 2 + 2 = 4 := by sorry" in masked and "bogus_tactic" not in masked
    assert len(split_holes(masked, "lean")) == 2
    # an error on a plain tactic line masks just that line
    masked2 = mask_failing_lines(src, [Message("error", "omega failed", 6, 2)], "lean")
    assert masked2.rstrip().split("\n")[-1] == "  sorry"
    with pytest.raises(IndexError):
        fill_hole(src, 3, "rfl", "lean")


def test_coq_split_and_fill():
    src = (
        "Theorem t : forall n : nat, n + 0 = n /\\ 0 + n = n.\nProof.\n  intros n. split.\n"
        "  - admit. (* admit in a comment is not a hole *)\n  - assert (h : True) by admit.\n    admit.\nAdmitted.\n"
    )
    holes = split_holes(src, "coq")
    assert [h.kind for h in holes] == ["admit", "admit", "admit", "Admitted"]
    out = fill_hole(src, 1, "exact I.", "coq")
    assert "by exact I." in out
    out = fill_hole(src, 0, "intros. lia.", "coq")
    assert "- intros. lia. (*" in out
    out = fill_hole(src, 3, "auto.", "coq")
    assert out.rstrip().endswith("auto.\nQed.")
    assert fill_hole(src, 1, "simpl. exact I.", "coq").count("(simpl; exact I)") == 1


def test_cache_memory_and_persistence():
    store: dict[CacheKey, CheckResult] = {}
    calls = []

    class Counting:
        name, version = "lean", "4.9.0"

        def check(self, problem, src):
            calls.append(src)
            return ok()

    cache = VerdictCache(persist=store.__setitem__, load=store.get)
    check_cached(Counting(), LEAN, LEAN_OK, cache)
    check_cached(Counting(), LEAN, LEAN_OK, cache)
    assert len(calls) == 1 and cache.hits == 1 and len(store) == 1
    # a fresh cache (a rerun) finds it through the persistence hook
    again = VerdictCache(persist=store.__setitem__, load=store.get)
    _, v, cached = check_cached(Counting(), LEAN, LEAN_OK, again)
    assert cached and v.outcome is Outcome.PASS and len(calls) == 1
    # a timeout is not remembered
    cache.put(CacheKey("a", "b", "c"), CheckResult("timeout", "lean", "x"))
    assert cache.get(CacheKey("a", "b", "c")) is None
