"""The Coq backend against the real checker (coqc / coqtop 8.16); no mocks."""

from __future__ import annotations

import json
import shutil
import threading
import time
from pathlib import Path

import pytest

if not shutil.which("coqc") or not shutil.which("coqtop"):
    pytest.skip("coqc/coqtop not found: install Coq (Debian: apt-get install -y coq)", allow_module_level=True)

from proofflow.problems.formal_set import coq_examples
from proofflow.verifiers.coq import CoqChecker, CoqConfig
from proofflow.verifiers.formal import FormalProblem, VerdictCache
from proofflow.verifiers.registry import (
    audit,
    check_cached,
    fill_hole,
    mask_failing_lines,
    split_holes,
)
from proofflow.verifiers.verdict import Outcome

DATA = Path(__file__).resolve().parents[1] / "data"
P = FormalProblem(
    name="t1",
    header="Require Import ZArith Lia.\nOpen Scope Z_scope.\n",
    statement="Theorem t1 : forall x y : Z, x < y -> x + 1 <= y.",
    backend="coq",
)
OK = P.statement + "\nProof.\n  intros x y h.\n  lia.\nQed.\n"


@pytest.fixture(scope="module", params=["session", "coqc"])
def checker(request):
    # Generous timeout: the machine may be loaded; the timeout test uses its own checker.
    with CoqChecker(CoqConfig(mode=request.param, workers=2, timeout_s=30)) as ch:
        yield ch


@pytest.fixture(scope="module")
def session():
    with CoqChecker(CoqConfig(mode="session", workers=2, timeout_s=30, recycle_after=5)) as ch:
        yield ch


def verdict(ch, src, problem=P):
    return audit(problem, src, ch.check(problem, src))


def test_complete_proof_passes(checker):
    r = checker.check(P, OK)
    assert r.status == "complete" and r.axioms == []
    assert audit(P, OK, r).outcome is Outcome.PASS


def test_error_has_position(checker):
    src = P.statement + "\nProof.\n  intros x y h.\n  exact I.\nQed.\n"
    r = checker.check(P, src)
    assert r.status == "error"
    assert (r.errors[0].line, r.errors[0].column) == (4, 8)
    assert audit(P, src, r).reason == "compile_error"


@pytest.mark.parametrize(
    "src",
    [
        P.statement + "\nProof.\n  intros x y h.\n  admit.\nAdmitted.\n",
        P.statement + "\nProof.\n  intros x y h.\n  admit.\nQed.\n",
        P.statement + "\nProof.\n  intros x y h.\n",
    ],
)
def test_holes_are_incomplete(checker, src):
    r = checker.check(P, src)
    assert r.status == "incomplete" and r.holes
    v = audit(P, src, r)
    assert v.outcome is Outcome.FAIL and v.reason == "hole"


def test_hole_goal_reported(session):
    src = P.statement + "\nProof.\n  intros x y h.\n  assert (h2 : x + 1 <= y) by admit.\n  exact h2.\nQed.\n"
    r = session.check(P, src)
    assert r.status == "incomplete"
    assert "h : x < y" in r.holes[0].goal


def test_extra_axiom_rejected(checker):
    src = "Axiom cheat : False.\n" + P.statement + "\nProof. destruct cheat. Qed.\n"
    r = checker.check(P, src)
    assert r.axioms == ["cheat"]
    v = audit(P, src, r)
    assert v.outcome is Outcome.FAIL and "axiom_declared" in v.details["reasons"]
    assert "nonstandard_axiom" in v.details["reasons"] or v.reason == "axiom_declared"


def test_library_axiom_caught_by_print_assumptions(checker):
    # No Axiom in the text: the axiom comes from a Required library, only Print Assumptions sees it.
    q = FormalProblem(name="em", header="", statement="Theorem em : forall P : Prop, P \\/ ~ P.", backend="coq")
    src = "Require Import Classical.\n" + q.statement + "\nProof. exact classic. Qed.\n"
    r = checker.check(q, src)
    assert r.status == "complete" and r.axioms == ["classic"]
    v = audit(q, src, r)
    assert v.outcome is Outcome.FAIL and v.reason == "nonstandard_axiom"


def test_changed_statement_rejected(checker):
    src = "Theorem t1 : forall x y : Z, x < y -> x <= y.\nProof. lia. Qed.\n"
    v = verdict(checker, src)
    assert v.outcome is Outcome.FAIL and v.reason == "statement_mismatch"


def test_redefined_name_rejected(checker):
    src = "Definition Z := nat.\n" + OK
    v = verdict(checker, src)
    assert v.outcome is Outcome.FAIL and "name_redefined" in v.details["reasons"]


def test_section_variable_trick_rejected(checker):
    # Same statement text, no Axiom keyword, Print Assumptions closed — but the Section
    # variable is discharged into the theorem's type. Only the elaborated-type check sees it.
    src = (
        "Section S.\nVariable cheat : forall x y : Z, x < y -> x + 1 <= y.\n"
        + P.statement
        + "\nProof. exact cheat. Qed.\nEnd S.\n"
    )
    r = checker.check(P, src)
    assert r.status == "complete" and r.axioms == []
    v = audit(P, src, r)
    assert v.outcome is Outcome.FAIL and v.reason == "statement_type_mismatch"


@pytest.mark.parametrize("mode", ["session", "coqc"])
def test_timeout_then_pool_keeps_working(mode):
    checker = CoqChecker(CoqConfig(mode=mode, workers=1, timeout_s=2))
    src = P.statement + "\nProof.\n  intros x y h.\n  repeat (assert True by exact I).\n  lia.\nQed.\n"
    r = checker.check(P, src)
    assert r.status == "timeout"
    assert audit(P, src, r).outcome is Outcome.TIMEOUT
    # the looping check is killed; the same (respawned) worker then passes a good proof
    triv = FormalProblem(name="triv", header=P.header, statement="Theorem triv : 1 + 1 = 2.", backend="coq")
    ok_result = checker.check(triv, triv.statement + "\nProof. reflexivity. Qed.\n")
    checker.close()
    assert ok_result.status == "complete", ok_result.detail


def test_session_command_refused(session):
    src = "Reset Initial.\n" + OK
    r = session.check(P, src)
    assert r.status == "rejected" and r.rejections == ["session_command"]


def test_isolation_between_checks(session):
    leak = FormalProblem(name="leak", header="", statement="Theorem leak : True.", backend="coq")
    src = "Require Import Lia.\nDefinition secret := 3.\n" + leak.statement + "\nProof. exact I. Qed.\n"
    assert session.check(leak, src).status == "complete"
    # Neither the definition nor the Require may survive into the next check.
    probe = leak.statement + "\nProof. pose (z := secret). exact I. Qed.\n"
    assert session.check(leak, probe).status == "error"
    probe2 = "Theorem leak : forall n : nat, n + 0 = n.\nProof. intros; lia. Qed.\n"
    assert (
        session.check(FormalProblem("leak", "", "Theorem leak : forall n : nat, n + 0 = n.", "coq"), probe2).status
        == "error"
    )


def test_recycle_and_threads(session):
    results = []

    def work():
        for _ in range(4):
            results.append(session.check(P, OK).status)

    threads = [threading.Thread(target=work) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == ["complete"] * 12
    assert session.stats["spawns"] >= 3  # recycle_after=5 forced fresh processes


def test_mask_then_automation_completes(session):
    problem = next(p for p in coq_examples() if p.name == "even_square_even")
    sketch = (
        problem.statement + "\nProof.\n  intros n [k hk].\n"
        "  assert (h : n * n = 2 * (2 * k * k)) by exact I.\n"
        "  exists (2 * k * k).\n  exact h.\nQed.\n"
    )
    r = session.check(problem, sketch)
    assert r.status == "error" and r.errors[0].line == 4
    masked = mask_failing_lines(sketch, r.messages, "coq")
    assert "by admit." in masked
    r2 = session.check(problem, masked)
    assert r2.status == "incomplete" and len(split_holes(masked, "coq")) == 1
    assert "hk : n = 2 * k" in r2.holes[0].goal
    # Cheapest first, as the prove stage does: the first tactic that closes the hole wins.
    for tactic in ["lia", "nia", "ring", "subst; ring"]:
        filled = fill_hole(masked, 0, tactic, "coq")
        if audit(problem, filled, session.check(problem, filled)).outcome is Outcome.PASS:
            break
    else:
        pytest.fail("no automation closed the masked hole")


def test_cache_hit_on_second_check(session):
    cache = VerdictCache()
    _, v1, c1 = check_cached(session, P, OK, cache)
    _, v2, c2 = check_cached(session, P, OK, cache)
    assert (c1, c2) == (False, True) and v1.outcome is v2.outcome is Outcome.PASS
    assert cache.hit_rate == 0.5


def test_every_example_elaborates_and_references_pass(session):
    problems = {p.metadata["id"]: p for p in coq_examples()}
    assert len(problems) >= 20
    for p in problems.values():
        r = session.check(p, p.statement + "\nProof.\n  admit.\nAdmitted.\n")
        assert r.status == "incomplete", (p.name, r.messages)
    for line in (DATA / "coq_reference_proofs.jsonl").read_text().splitlines():
        ref = json.loads(line)
        p = problems[ref["id"]]
        assert audit(p, ref["proof"], session.check(p, ref["proof"])).outcome is Outcome.PASS, ref["id"]


def test_memory_cap_kills_and_pool_recovers():
    # RLIMIT_AS: a proof that allocates without bound takes coqtop down (ERROR, never a
    # pass) instead of the host; the next check gets a fresh process.
    q = FormalProblem(name="m", header="Require Import List.\n", statement="Theorem m : True.", backend="coq")
    with CoqChecker(CoqConfig(mode="session", workers=1, memory_mb=1024, timeout_s=30)) as ch:
        src = (
            "Definition big := Eval vm_compute in List.length (List.repeat 0 50000000).\n"
            + q.statement
            + "\nProof. exact I. Qed.\n"
        )
        r = ch.check(q, src)
        assert r.status in ("crash", "error") and audit(q, src, r).outcome is not Outcome.PASS
        assert ch.check(q, q.statement + "\nProof. exact I. Qed.\n").status == "complete"


def test_unicode_positions(session):
    q = FormalProblem(name="u", header="", statement="Theorem u : True.", backend="coq")
    src = "(* é è ü *) Theorem u : True.\nProof. (* ééé *) exact 0. Qed.\n"
    r = session.check(q, src)
    m = r.errors[0]
    assert src.split("\n")[m.line - 1][m.column : m.end_column] == "0"


def test_library_import_in_source_is_not_a_statement_mismatch(checker):
    # Issue 12.6: after `Require Import Arith`, `Init.Nat.add` no longer prints as
    # `Nat.add`; the same statement must not be rejected as statement_type_mismatch.
    p = FormalProblem("t", "", "Theorem t (a b : nat) : a + b = b + a.", "coq")
    src = "Require Import Arith.\n" + p.statement + "\nProof. apply Nat.add_comm. Qed.\n"
    r = checker.check(p, src)
    assert r.status == "complete" and r.rejections == [], r.detail
    assert audit(p, src, r).outcome is Outcome.PASS
    # A genuinely different statement under the same import is still rejected.
    other = (
        "Require Import Arith.\nOpen Scope nat_scope.\n"
        "Theorem t (a b : nat) : a * b = b * a.\nProof. apply Nat.mul_comm. Qed.\n"
    )
    assert audit(p, other, checker.check(p, other)).outcome is Outcome.FAIL


def test_acquire_gives_up_when_no_session_frees():
    # Issue 10.1: acquiring a session used to wait forever; now a bounded wait, then TIMEOUT.
    with CoqChecker(CoqConfig(mode="session", workers=1, timeout_s=8, acquire_timeout_s=0.5)) as ch:
        loop = P.statement + "\nProof.\n  intros x y h.\n  repeat (assert True by exact I).\n  lia.\nQed.\n"
        holder = threading.Thread(target=ch.check, args=(P, loop))
        holder.start()
        try:
            time.sleep(1.0)  # the only session is busy with the looping proof
            t0 = time.monotonic()
            r = ch.check(P, OK)
            waited = time.monotonic() - t0
        finally:
            holder.join()
        assert r.status == "timeout" and "no coq session worker became free" in r.detail
        assert waited < 5
        assert audit(P, OK, r).outcome is Outcome.TIMEOUT
        assert ch.check(P, OK).status == "complete"  # freed again once the loop was killed


def test_a_header_that_fails_during_a_run_is_the_environments_error_not_a_cached_fail(checker):
    # The check before a run catches this; a header that still fails in a run (a library
    # removed since) says nothing about the candidate: ERROR, not `fail`, never cached.
    broken = FormalProblem(name="h1", header="Require Import NoSuchLibraryHere.\n",
                           statement="Theorem h1 : 1 = 1.", backend="coq")
    src = broken.statement + "\nProof. reflexivity. Qed.\n"
    r = checker.check(broken, src)
    assert r.status == "crash" and "header does not elaborate here" in r.detail
    assert "NoSuchLibraryHere" in r.detail
    cache = VerdictCache()
    _, v, cached = check_cached(checker, broken, src, cache)
    assert v.outcome is Outcome.ERROR and not cached
    _, v, cached = check_cached(checker, broken, src, cache)
    assert not cached  # asked again: the environment may have been fixed meanwhile
    assert checker.check(P, OK).status == "complete"  # the checker is fine afterwards


def test_a_header_coq_cannot_elaborate_stops_a_prove_run_before_any_model_call(tmp_path: Path) -> None:
    # Issue 20.2 for Coq: the header alone goes through coqc before a run pays for a sample.
    import os
    import subprocess
    import sys

    with CoqChecker() as checker:
        assert checker.check_header("Require Import ZArith Lia.\n") == []
        errors = checker.check_header("Require Import NoSuchLibraryHere.\n")
    assert len(errors) == 1 and "NoSuchLibraryHere" in errors[0]
    problems = tmp_path / "p.jsonl"
    problems.write_text(
        '{"id": "needs_lib", "backend": "coq", "header": "Require Import NoSuchLibraryHere.\\n", '
        '"statement": "Theorem needs_lib : 1 = 1."}\n'
        '{"id": "fine", "backend": "coq", "header": "Require Import Arith.\\n", "statement": "Theorem fine : 2 = 2."}\n'
    )
    db = tmp_path / "x.duckdb"
    # Port 9 answers nothing: a model call would fail differently, and slowly.
    proc = subprocess.run([sys.executable, "-m", "proofflow.cli", "prove", str(problems), "--backend", "coq",
                           "--base-url", "http://127.0.0.1:9/v1", "--db", str(db)],
                          capture_output=True, text=True, timeout=600, cwd=tmp_path,
                          env={**os.environ, "COLUMNS": "1000"})  # one line on the terminal, unwrapped
    assert proc.returncode != 0
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1, proc.stdout
    assert "cannot elaborate the header of 1 of 2 problem(s) (first: needs_lib)" in lines[0]
    assert "does not have the module NoSuchLibraryHere;" in lines[0]
    assert "to resume" not in proc.stdout
    assert not db.exists()  # nothing asked, nothing stored
