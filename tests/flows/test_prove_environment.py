"""A problem set the configured Lean cannot elaborate never silently zeroes a run (issue
20.2): before any model call, each distinct header is elaborated once in the configured
checker; a header that fails stops the run with one line naming what is missing and how to
point proofflow at a Lean project that has it, and nothing is generated, judged or cached.

Real components: the CLI in a subprocess, a real temporary Prefect server, the real wasm
Lean (no Mathlib), a real DuckDB file. The model endpoint is the instant STAND-IN server
(it only counts requests here: none may arrive)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from proofflow.storage.db import Store
from proofflow.tasks.environment_check import HeaderFailure, failure_line, missing_modules
from proofflow.testing.instant_server import InstantServer

MINIF2F = "minif2f-deepseek/minif2f.jsonl"


@pytest.mark.lean
@pytest.mark.slow
@pytest.mark.prefect
def test_prove_on_a_lean_without_mathlib_stops_before_any_model_call(
        prefect_api: str, instant_server: InstantServer, shared_data: Path, tmp_path: Path) -> None:
    db = tmp_path / "env.duckdb"
    env = {**os.environ, "PREFECT_API_URL": prefect_api, "COLUMNS": "400"}
    out = subprocess.run(
        [sys.executable, "-m", "proofflow.cli", "prove", str(shared_data / MINIF2F), "--backend", "lean",
         "--limit", "2", "--model", "instant", "--base-url", instant_server.base_url, "--db", str(db),
         "--workers", "1"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
    text = out.stdout + out.stderr
    assert out.returncode != 0, text
    lines = [line for line in text.splitlines() if "cannot elaborate the header" in line]
    assert len(lines) == 1, text
    assert "Mathlib" in lines[0] and "--lean-project" in lines[0] and "lean_project_dir" in lines[0], lines[0]
    assert "Traceback" not in text
    assert instant_server.behaviour.received == 0  # no model call
    if db.exists():  # nothing generated, judged or cached
        store = Store(db)
        for table in ("samples", "verdicts", "calls", "check_cache"):
            assert store.query(f"SELECT count(*) FROM {table}")[1] == [(0,)], table

def test_the_line_names_the_missing_module_and_the_way_out() -> None:
    header = "import Mathlib\nimport Aesop\nset_option maxHeartbeats 400000\nopen BigOperators Real\n"
    assert missing_modules(header, ["unknown namespace `BigOperators`"]) == ["Mathlib", "Aesop"]
    assert missing_modules(header, ["unknown module prefix 'Mathlib'"]) == ["Mathlib"]
    line = failure_line([HeaderFailure(header, ("p1", "p2"), ("unknown namespace `BigOperators`",))], 5, "lean")
    assert "\n" not in line
    assert "2 of 5 problem(s) (first: p1)" in line and "Mathlib, Aesop" in line
    assert "--lean-project DIR" in line and 'lean_project_dir = "DIR"' in line


def test_a_missing_toolchain_during_a_run_is_never_a_cached_fail() -> None:
    from proofflow.verifiers.formal import FormalProblem, VerdictCache
    from proofflow.verifiers.lean.program import LeanProgramChecker, ProgramConfig
    from proofflow.verifiers.registry import check_cached

    problem = FormalProblem(name="t", header="", statement="theorem t : True := by", backend="lean")
    stored: list[object] = []
    cache = VerdictCache(persist=lambda key, result: stored.append(result))
    cfg = ProgramConfig(lean_command=("/nonexistent/lean",), version="gone", workers=1, start_timeout_s=5)
    with LeanProgramChecker(cfg) as checker:
        result, verdict, was_cached = check_cached(checker, problem, "theorem t : True := by\n  trivial\n", cache)
    assert result.status == "crash" and "No such file" in result.detail, result
    assert verdict.outcome.value == "error" and not was_cached
    assert stored == [] and len(cache) == 0
