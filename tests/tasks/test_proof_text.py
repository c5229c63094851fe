"""tasks/proof_text.py: from a completion to the proof source a checker runs (pure text)."""

from __future__ import annotations

from proofflow.tasks.proof_text import assemble, clip, extract_proof, extract_tactic, fenced_blocks
from proofflow.verifiers.formal import FormalProblem

FENCE = "```"
COQ = FormalProblem(name="add_comm_z", header="Require Import ZArith.\nOpen Scope Z_scope.\n",
                    statement="Theorem add_comm_z : forall a b : Z, a + b = b + a.", backend="coq")
LEAN = FormalProblem(name="t", header="import Mathlib\n",
                     statement="theorem t (a b : ℕ) : a + b = b + a := by", backend="lean")


def test_fenced_blocks_in_order_and_an_unclosed_last_block_runs_to_the_end() -> None:
    text = f"a\n{FENCE}coq\nfirst\n{FENCE}\nb\n{FENCE}\nsecond\n{FENCE}\n{FENCE}lean\nthird"
    assert fenced_blocks(text) == ["first\n", "second\n", "third"]
    assert fenced_blocks("no code here") == []


def test_extract_proof_prefers_the_block_with_the_statement_and_drops_repeated_header() -> None:
    completion = (f"Try:\n{FENCE}coq\nintros. lia.\n{FENCE}\nOr better:\n{FENCE}coq\nRequire Import ZArith.\n"
                  f"{COQ.statement}\nProof. intros. lia. Qed.\n{FENCE}\n")
    assert extract_proof(completion, COQ) == f"{COQ.statement}\nProof. intros. lia. Qed.\n"


def test_extract_proof_keeps_a_declaring_block_whole_so_the_audit_sees_an_axiom() -> None:
    completion = f"{FENCE}coq\nAxiom cheat : forall P : Prop, P.\n{COQ.statement}\nProof. apply cheat. Qed.\n{FENCE}"
    source = extract_proof(completion, COQ)
    assert source.startswith("Axiom cheat") and "apply cheat" in source


def test_a_bare_tactic_body_gets_the_statement_and_proof_wrappers() -> None:
    assert extract_proof("intros. lia.", COQ) == f"{COQ.statement}\nProof.\nintros. lia.\nQed.\n"
    assert extract_proof("omega", LEAN) == "theorem t (a b : ℕ) : a + b = b + a := by\n  omega\n"


def test_assemble_starts_at_the_statement_when_the_text_carries_it() -> None:
    text = f"Sure, here it is: {COQ.statement}\nProof. lia. Qed."
    assert assemble(COQ, text) == f"{COQ.statement}\nProof. lia. Qed.\n"
    assert assemble(LEAN, "") == "theorem t (a b : ℕ) : a + b = b + a := by\n  sorry\n"


def test_extract_tactic_strips_proof_wrappers_and_never_returns_nothing() -> None:
    assert extract_tactic(f"{FENCE}coq\nProof. lia. Qed.\n{FENCE}", "coq") == "lia."
    assert extract_tactic("by simp", "lean") == "simp"
    assert extract_tactic("", "coq") == "admit."
    assert extract_tactic("   ", "lean") == "sorry"


def test_clip_keeps_the_end() -> None:
    assert clip("short") == "short"
    long = "x" * 10 + "END"
    assert clip(long, 5) == "[... cut ...]\n" + long[-5:]
