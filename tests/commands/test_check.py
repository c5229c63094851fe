"""`proofflow check` as a subprocess: the real Coq checker and the real (wasm) Lean."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

LEAN_STMT = "theorem linear_two_vars (x y : Int) (h₁ : x + y = 10) (h₂ : x - y = 2) : x = 6 := by"
COQ_STMT = "Theorem linear_two_vars : forall x y : Z, x + y = 10 -> x - y = 2 -> x = 6."


def run(*args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "proofflow.cli", "check", *args], capture_output=True, text=True,
                          timeout=timeout)


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


@pytest.mark.lean
@pytest.mark.slow
@pytest.mark.timeout(2400)  # four checker processes (three files end theirs), 30-120 s each to start
def test_lean_one_candidate_never_changes_another(tmp_path: Path) -> None:
    """Issue 20.1 as reported: in one `proofflow check` call, files in alphabetical order, a
    macro that redefines `omega` followed by `native_decide` used to kill the checker and
    turn every later file, honest ones included, into `error checker_crash`."""
    files = {
        "a_macro_omega": 'macro "omega" : tactic => `(tactic| sorry)\n' + LEAN_STMT + "\n  omega\n",
        "b_native_decide": LEAN_STMT + "\n  have : 2 + 2 = 4 := by native_decide\n  omega\n",
        "c_honest": LEAN_STMT + "\n  omega\n",
        "d_namespace": "namespace X\n" + LEAN_STMT + "\n  omega\nend X\n",
        "e_exit": "#eval (IO.Process.exit 3 : IO Unit)\n" + LEAN_STMT + "\n  omega\n",
        "f_honest_have": LEAN_STMT + "\n  have h : x + y + (x - y) = 12 := by omega\n  omega\n",
    }
    paths = []
    for name, text in files.items():
        (tmp_path / f"{name}.lean").write_text(text)
        paths.append(str(tmp_path / f"{name}.lean"))
    out = run(*paths, "--problem", "lean-examples:linear_two_vars", "--json", timeout=2300)
    assert out.returncode == 1, out.stderr
    rows = {Path(r["file"]).stem: r for r in map(json.loads, out.stdout.splitlines())}
    assert list(rows) == list(files)
    assert rows["a_macro_omega"]["outcome"] == "fail" and "hole" in rows["a_macro_omega"]["reasons"]
    assert rows["b_native_decide"]["outcome"] == "fail" and "native_decide" in rows["b_native_decide"]["reasons"]
    assert (rows["c_honest"]["outcome"], rows["f_honest_have"]["outcome"]) == ("pass", "pass")
    assert rows["d_namespace"]["reason"] == "statement_missing"
    # The file that kills the checker costs itself only.
    assert (rows["e_exit"]["outcome"], rows["e_exit"]["reason"]) == ("error", "checker_crash")
