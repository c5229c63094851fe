"""The `proofflow` command line as a user runs it: real subprocesses, reporting to the
test session's Prefect server, against the STAND-IN instant server."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from proofflow.problems import example_path
from proofflow.testing.instant_server import InstantServer

pytestmark = pytest.mark.prefect


def cli(api: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PREFECT_API_URL": api, "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "proofflow.cli", *args], cwd=cwd, env=env,
                           capture_output=True, text=True, timeout=300)


def test_malformed_file_fails_before_any_model_call(prefect_api: str, tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "a", "problem": "1+1?", "answer": "2"}\n{"id": "b", "answer": "3"}\n')
    with InstantServer() as srv:
        out = cli(prefect_api, "solve", str(bad), "--base-url", srv.base_url, "--model", "instant", cwd=tmp_path)
        assert srv.behaviour.received == 0
    assert out.returncode == 1
    assert "bad.jsonl, line 2, field 'problem': missing" in out.stdout
    assert not (tmp_path / "proofflow.duckdb").exists()


def test_solve_runs_show_and_sql(prefect_api: str, tmp_path: Path) -> None:
    with InstantServer() as srv:
        out = cli(prefect_api, "solve", str(example_path()), "--base-url", srv.base_url, "--model", "instant",
                  "-n", "2", "--limit", "3", "--run", "cli-run", "--price-in", "1", "--price-out", "2",
                  cwd=tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "run cli-run" in out.stdout and "3/3" in out.stdout
    listed = cli(prefect_api, "runs", cwd=tmp_path)
    assert "cli-run" in listed.stdout and "completed" in listed.stdout
    shown = cli(prefect_api, "show", "cli-run", cwd=tmp_path)
    assert shown.returncode == 0 and "add-small" in shown.stdout and "sub-small" in shown.stdout
    sql = cli(prefect_api, "sql", "SELECT count(*) AS n FROM samples WHERE stage = 'generate'", "--csv", cwd=tmp_path)
    assert sql.returncode == 0 and sql.stdout.strip().splitlines()[-1] == "6"
    missing = cli(prefect_api, "show", "no-such-run", cwd=tmp_path)
    assert missing.returncode == 1 and "no run named 'no-such-run'" in missing.stdout


def test_prove_command_stores_and_reports(prefect_api: str, tmp_path: Path) -> None:
    with InstantServer() as srv:  # answers no Coq at all: every candidate must fail, cleanly
        out = cli(prefect_api, "prove", "coq-examples", "--base-url", srv.base_url, "--model", "instant",
                  "-n", "1", "-r", "0", "--limit", "1", "--run", "cli-prove", cwd=tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "problems of run cli-prove" in out.stdout and "checks run" in out.stdout


def test_tables_in_a_pipe_are_not_cut(prefect_api: str, tmp_path: Path) -> None:
    """Issue 11.8: with stdout a pipe (CI logs, `| less`, a file) rich assumed 80 columns and
    cut names and headers to "example…", "prob…"; a pipe gets the full values."""
    long_name = "a-run-name-long-enough-to-be-cut-at-eighty-columns-" + "x" * 30
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    env["PREFECT_API_URL"] = prefect_api

    def piped(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "proofflow.cli", *args], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=300)

    with InstantServer() as srv:
        out = piped("solve", str(example_path()), "--base-url", srv.base_url, "--model", "instant",
                    "-n", "2", "--limit", "2", "--run", long_name)
    assert out.returncode == 0, out.stdout + out.stderr
    listed = piped("runs")
    assert long_name in listed.stdout, listed.stdout
    shown = piped("show", long_name)
    assert shown.returncode == 0, shown.stdout + shown.stderr
    for header in ("problems", "selected answer", "completion tok", "failed calls"):
        assert header in shown.stdout, shown.stdout
    assert "…" not in listed.stdout + shown.stdout
