"""`proofflow check` as a subprocess: the real Coq checker and the real (wasm) Lean."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

LEAN_STMT = "theorem linear_two_vars (x y : Int) (h₁ : x + y = 10) (h₂ : x - y = 2) : x = 6 := by"
COQ_STMT = "Theorem linear_two_vars : forall x y : Z, x + y = 10 -> x - y = 2 -> x = 6."


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "proofflow.cli", "check", *args], capture_output=True, text=True,
                          timeout=900)


def test_coq_json_lines_and_exit_codes(tmp_path: Path) -> None:
    ok, bad = tmp_path / "ok.v", tmp_path / "bad.v"
    ok.write_text(COQ_STMT + "\nProof. intros. lia. Qed.\n")
    bad.write_text(COQ_STMT + "\nProof. admit. Admitted.\n")
    out = run(str(ok), str(bad), "--problem", "coq-examples:linear_two_vars", "--json")
    assert out.returncode == 1, out.stderr
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    got = [(r["file"], r["outcome"], r["reason"]) for r in rows]
    assert got == [(str(ok), "pass", None), (str(bad), "fail", "hole")]
    assert run(str(ok), "--problem", "coq-examples:linear_two_vars").returncode == 0


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    ok = tmp_path / "ok.v"
    ok.write_text(COQ_STMT + "\nProof. intros. lia. Qed.\n")
    assert run(str(ok), "--problem", "coq-examples:no_such").returncode == 2
    assert run(str(ok), "--problem", "coq-examples:linear_two_vars", "--backend", "lean").returncode == 2
    assert run(str(tmp_path / "missing.v"), "--problem", "coq-examples:linear_two_vars").returncode == 2


@pytest.mark.lean
@pytest.mark.slow
def test_lean_files_in_one_checker(tmp_path: Path) -> None:
    files = {"ok": LEAN_STMT + "\n  omega\n", "hole": LEAN_STMT + "\n  sorry\n",
             "ns": "namespace X\n" + LEAN_STMT + "\n  omega\nend X\n"}
    paths = []
    for name, text in files.items():
        (tmp_path / f"{name}.lean").write_text(text)
        paths.append(str(tmp_path / f"{name}.lean"))
    out = run(*paths, "--problem", "lean-examples:linear_two_vars", "--json")
    assert out.returncode == 1, out.stderr
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    got = [(r["outcome"], r["reason"]) for r in rows]
    assert got == [("pass", None), ("fail", "hole"), ("fail", "statement_missing")]
    assert "unofficial WebAssembly build" in out.stderr
