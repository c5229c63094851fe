"""`proofflow prove`: a user's mistake is one clear line, a bug keeps its traceback, and
a `{date}` run name is expanded on this path too (its results table was dropped)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from proofflow.testing.instant_server import InstantServer


def cli(api: str | None, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200"}
    if api:
        env["PREFECT_API_URL"] = api
    return subprocess.run([sys.executable, "-m", "proofflow.cli", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def test_a_file_for_another_backend_is_one_clear_line(tmp_path: Path) -> None:
    lean = tmp_path / "lean.jsonl"
    lean.write_text(json.dumps({"id": "t", "backend": "lean", "header": "import Mathlib",
                                "statement": "theorem t : 1 + 1 = 2 := by"}) + "\n")
    out = cli(None, "prove", str(lean), "--model", "instant", "--db", str(tmp_path / "x.duckdb"), cwd=tmp_path)
    assert out.returncode == 1
    assert "are not coq problems" in out.stdout and "choose --backend" in out.stdout
    assert "Traceback" not in out.stdout + out.stderr


def test_a_bug_keeps_its_traceback(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A ValueError from inside the run is not dressed up as the user's mistake: the
    terminal names the exception type, and its traceback is in the log file it names."""
    import re

    from proofflow import cli as cli_module
    from proofflow.flows import prove as prove_flows

    def broken(spec: object) -> dict[str, object]:
        raise ValueError("an internal bug, not the user's mistake")

    monkeypatch.setattr(prove_flows, "run_prepared", broken)
    result = CliRunner().invoke(cli_module.app, ["prove", "coq-examples", "--limit", "1", "--model", "instant",
                                                 "--db", str(tmp_path / "b.duckdb")], env={"COLUMNS": "300"})
    assert result.exit_code == 1
    assert "error: ValueError: an internal bug" in result.output
    log = re.search(r"Full log: (\S+\.log)", result.output)
    assert log, result.output
    text = Path(log.group(1)).read_text()
    assert "Traceback" in text and 'raise ValueError("an internal bug' in text


@pytest.mark.prefect
def test_a_date_run_name_is_expanded_and_its_results_shown(prefect_api: str, tmp_path: Path) -> None:
    today = datetime.now(UTC).strftime("%Y-%m-%d")
    with InstantServer() as srv:
        out = cli(prefect_api, "prove", "coq-examples", "--base-url", srv.base_url, "--model", "instant",
                  "-n", "1", "-r", "0", "--limit", "1", "--run", "nightly-{date}", cwd=tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"problems of run nightly-{today}" in out.stdout
    assert "{date}" not in out.stdout
