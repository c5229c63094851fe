"""verifiers/registry.py: the one map from a backend's name to its FormalBackend, and what
reads a problem file or a check through it (issue #16.2, 16.7)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from proofflow.problems import ProblemFileError, load_formal_problems
from proofflow.verifiers.coq.backend import COQ
from proofflow.verifiers.formal import FormalBackend
from proofflow.verifiers.lean.backend import LEAN
from proofflow.verifiers.registry import backend, languages, names


def test_names_and_languages() -> None:
    assert names() == ["coq", "lean", "kimina"]
    assert languages() == ["coq", "lean"]  # kimina checks Lean problems
    assert backend("coq") is COQ and backend("lean") is LEAN and backend(COQ) is COQ
    kimina = backend("kimina")
    assert kimina.name == "lean" and kimina.prompt_variant == "lean" and kimina.text_rules is LEAN.text_rules
    with pytest.raises(ValueError, match=r"unknown formal backend 'isabelle' \(known: coq, lean, kimina\)"):
        backend("isabelle")


def test_each_backend_answers_the_protocol() -> None:
    # What the neutral code asks, asked of each: a Protocol is structural, so this is the check.
    members = [m for m in dir(FormalBackend) if not m.startswith("_")] + list(FormalBackend.__annotations__)
    for b in (COQ, LEAN):
        assert not [m for m in members if not hasattr(b, m)], b.name
    assert COQ.tactic_text("lia") == "lia." and LEAN.tactic_text("omega") == "omega"
    assert COQ.theorem_name("Theorem foo : True.") == "foo" and LEAN.theorem_name("theorem bar : True := by") == "bar"
    assert COQ.statement_error("Theorem foo : True") and LEAN.statement_error("theorem bar : True := by") is None
    assert "lia" in COQ.automation("") and "norm_num" in LEAN.automation("import Mathlib") != LEAN.automation("")


def write(tmp_path: Path, *rows: dict[str, object]) -> Path:
    path = tmp_path / "plain.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_a_plain_line_is_read_as_the_backend_the_caller_names(tmp_path: Path) -> None:
    path = write(tmp_path, {"id": "one", "header": "", "statement": "Theorem one : 1 + 1 = 2."})
    [p] = load_formal_problems(path, backend="coq")
    assert p.backend == "coq" and p.name == "one"
    # Without the flag the line is read as Lean, and the error says so and why.
    with pytest.raises(ProblemFileError, match=r"line 1, field 'statement': does not start with `theorem NAME \.\.\.` "
                                               r"as a lean statement \(the line has no `backend` field\)"):
        load_formal_problems(path)
    # A line's own field wins over the caller's default.
    own = write(tmp_path, {"id": "t", "header": "", "statement": "theorem t : 1 = 1 := by", "backend": "lean"})
    assert load_formal_problems(own, backend="coq")[0].backend == "lean"
    bad = write(tmp_path, {"id": "t", "header": "", "statement": "theorem t : 1 = 1 := by", "backend": "agda"})
    with pytest.raises(ProblemFileError, match="field 'backend': expected 'coq' or 'lean', got 'agda'"):
        load_formal_problems(bad)


def test_check_command_reads_the_line_as_its_backend_flag(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from proofflow.cli import app

    problems = write(tmp_path, {"id": "one", "header": "", "statement": "Theorem one : 1 + 1 = 2."})
    proof = tmp_path / "one.v"
    proof.write_text("Theorem one : 1 + 1 = 2.\nProof. reflexivity. Qed.\n", encoding="utf-8")
    runner = CliRunner()
    wrong = runner.invoke(app, ["check", str(proof), "--problem", f"{problems}:one", "--json"])
    assert wrong.exit_code == 2 and "as a lean statement" in wrong.output
    if not __import__("shutil").which("coqtop"):
        pytest.fail("coqtop not found: install Coq (apt-get install -y coq)")
    ok = runner.invoke(app, ["check", str(proof), "--problem", f"{problems}:one", "--backend", "coq", "--json"])
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.output.strip().splitlines()[-1])["outcome"] == "pass"


def test_the_backend_setting_accepts_exactly_the_registered_backends() -> None:
    import pydantic

    from proofflow.config import ProveConfig
    from proofflow.verifiers import registry

    for name in registry.names():
        assert ProveConfig(backend=name).backend == name
    with pytest.raises(pydantic.ValidationError, match="registered: coq"):
        ProveConfig(backend="isabelle")
    # What only some backends have is a backend attribute, never a branch on a name.
    assert registry.backend("lean").proof_states and not registry.backend("coq").proof_states
    assert "--lean-project" in registry.backend("lean").environment_help
