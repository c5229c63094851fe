"""Resuming with an edited problem file, as a user does it (issue 12.5): real `proofflow
solve` processes against the STAND-IN instant server, reporting to the session's Prefect
server. Before, one changed answer in a 10-line file silently made the run 11 problems
(the old one kept, the edited one added)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from proofflow.testing.instant_server import InstantServer

pytestmark = pytest.mark.prefect


def _write(path: Path, answers: list[str]) -> None:
    path.write_text("".join(json.dumps({"id": f"q{i}", "problem": f"What is {i} + {i}?", "answer": a}) + "\n"
                            for i, a in enumerate(answers)))


def _solve(api: str, srv: InstantServer, problems: Path, cwd: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PREFECT_API_URL": api, "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "proofflow.cli", "solve", str(problems), "--base-url", srv.base_url,
                           "--model", "instant", "-n", "1", "-r", "0", "--run", "edited", "--db", "p.duckdb", *extra],
                          env=env, cwd=cwd, capture_output=True, text=True, timeout=300)


def test_an_edited_file_is_refused_and_extend_adds_lines(prefect_api: str, tmp_path: Path) -> None:
    problems = tmp_path / "ten.jsonl"
    answers = [str(2 * i) for i in range(10)]
    _write(problems, answers)
    with InstantServer() as srv:
        first = _solve(prefect_api, srv, problems, tmp_path)
        assert first.returncode == 0, first.stdout + first.stderr
        calls = srv.behaviour.received
        answers[3] = "7"
        _write(problems, answers)
        edited = _solve(prefect_api, srv, problems, tmp_path)
        out = edited.stdout + edited.stderr
        assert edited.returncode == 1, out
        assert "line 4 (id q3): answer was" in out and "ten.jsonl" in out, out
        assert srv.behaviour.received == calls  # refused before any model call
        answers[3] = "6"
        _write(problems, answers)
        with problems.open("a") as f:
            f.write(json.dumps({"id": "q10", "problem": "What is 10 + 10?", "answer": "20"}) + "\n")
        added = _solve(prefect_api, srv, problems, tmp_path)
        assert added.returncode == 1 and "line 11 (id q10): added" in added.stdout + added.stderr
        extended = _solve(prefect_api, srv, problems, tmp_path, "--extend")
        assert extended.returncode == 0, extended.stdout + extended.stderr
        assert "11/11" in extended.stdout
        assert srv.behaviour.received == calls + 1  # only the new problem was asked
