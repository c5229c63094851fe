"""Resuming a finished run is a lookup, not a replay (issue 19.4): `proofflow solve` on a
run that is completed with every problem of the file done answers from the store, with
the flow's own summary figures, without importing Prefect (so no flow run, no task run,
no artifact) and without writing anything; a changed setting is still refused with the
flow's message; a run with a problem left goes through the flow.

Real subprocesses of the CLI, a real DuckDB file, the session's real Prefect server for
the flow runs, and the STAND-IN instant model server."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from proofflow.problems import example_path
from proofflow.storage.db import Store
from proofflow.testing.instant_server import InstantServer

pytestmark = pytest.mark.prefect

RUN = "lookup-run"
# Runs the CLI in a fresh interpreter, then says whether Prefect was ever imported.
PROBE = """
import sys
from proofflow.cli import app
try:
    app(sys.argv[1:])
except SystemExit as exc:
    code = exc.code or 0
print("PREFECT IMPORTED" if "prefect" in sys.modules else "PREFECT NOT IMPORTED")
sys.exit(code)
"""


@dataclass
class Finished:
    dir: Path
    server: InstantServer
    api: str
    flow_output: str

    def args(self, *more: str, limit: int = 3) -> list[str]:
        return ["solve", str(self.dir / "problems.jsonl"), "--base-url", self.server.base_url,
                "--model", "instant", "-n", "2", "-r", "0", "--limit", str(limit), "--run", RUN, *more]

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "PREFECT_API_URL": self.api, "COLUMNS": "200"}
        return subprocess.run([sys.executable, "-c", PROBE, *args], cwd=self.dir, env=env,
                              capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def finished(prefect_api: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Finished]:
    """A run of 3 problems × 2 samples, finished by the flow."""
    folder = tmp_path_factory.mktemp("lookup")
    shutil.copy(example_path(), folder / "problems.jsonl")
    with InstantServer() as server:
        state = Finished(folder, server, prefect_api, "")
        out = state.cli(*state.args())
        assert out.returncode == 0, out.stdout + out.stderr
        assert "PREFECT IMPORTED" in out.stdout  # the flow ran
        state.flow_output = out.stdout
        yield state


def summary_table(output: str) -> list[str]:
    """The run's summary table (title, borders, header, row), as printed."""
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip().startswith(f"run {RUN}  ("))
    end = next(i for i in range(start, len(lines)) if lines[i].startswith("└"))
    return [line.rstrip() for line in lines[start:end + 1]]


def test_a_finished_run_is_answered_from_the_store_without_prefect(finished: Finished) -> None:
    db = finished.dir / "proofflow.duckdb"
    before = (db.stat().st_mtime_ns, sorted(p.name for p in (finished.dir / "proofflow-logs").iterdir()))
    asked = finished.server.behaviour.received
    out = finished.cli(*finished.args())
    assert out.returncode == 0, out.stdout + out.stderr
    assert "PREFECT NOT IMPORTED" in out.stdout
    assert f"run {RUN}: all 3 problems are done; nothing to do" in out.stdout
    # The same table, the same figures as the flow's own summary printed.
    table = summary_table(out.stdout)
    assert table == summary_table(finished.flow_output)
    cells = [c.strip() for c in table[-2].split("│")[1:-1]]
    assert cells[0] == "3" and cells[5] == "6"  # problems, samples (3 × 2)
    # Nothing asked, nothing written, no log file of a run.
    assert finished.server.behaviour.received == asked
    assert (db.stat().st_mtime_ns, sorted(p.name for p in (finished.dir / "proofflow-logs").iterdir())) == before


def test_a_changed_setting_is_still_refused_with_the_flows_message(finished: Finished) -> None:
    args = finished.args()
    args[args.index("-n") + 1] = "3"
    out = finished.cli(*args)
    assert out.returncode == 1
    assert f"run '{RUN}' already exists with different settings (samples)" in out.stdout
    assert "PREFECT NOT IMPORTED" in out.stdout


def test_a_run_with_a_problem_left_goes_through_the_flow(finished: Finished) -> None:
    """Last in this module: it grows the run to 4 problems."""
    out = finished.cli(*finished.args(limit=4))
    assert out.returncode == 0, out.stdout + out.stderr
    assert "PREFECT IMPORTED" in out.stdout and "nothing to do" not in out.stdout
    assert "4/4" in out.stdout
    _, ((results,),) = Store(finished.dir / "proofflow.duckdb").query("SELECT count(*) FROM results")
    assert results == 4
