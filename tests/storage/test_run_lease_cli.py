"""One process per run, as a user meets it (issue 12.3): real `proofflow solve` processes
on the same run and database, against the STAND-IN instant server (with a per-request
delay so a run lasts long enough to meet the other), reporting to the session's Prefect
server.

Before the lease, the second process did all the work again (every model call twice),
and a killed run showed `running` forever.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from proofflow.keys import run_id_for
from proofflow.problems import example_path
from proofflow.storage.lease import current_holder
from proofflow.testing.instant_server import Behaviour, InstantServer

pytestmark = pytest.mark.prefect


def _env(api: str) -> dict[str, str]:
    return {**os.environ, "PREFECT_API_URL": api, "COLUMNS": "200"}


def _solve(srv: InstantServer, db: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "proofflow.cli", "solve", str(example_path()), "--base-url", srv.base_url,
            "--model", "instant", "-n", "2", "-r", "0", "--limit", "6", "--problems-in-flight", "1",
            "--db", str(db), "--run", "shared", *extra]


def _start(cmd: list[str], api: str, cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(cmd, env=_env(api), cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)


def _wait_requests(srv: InstantServer, n: int, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while srv.behaviour.received < n:
        assert time.monotonic() < deadline, "the run made no model request in time"
        time.sleep(0.05)


def _cli(api: str, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "proofflow.cli", *args], env=_env(api), cwd=cwd,
                          capture_output=True, text=True, timeout=300)


class Gate(Behaviour):
    """Answers hold until the test opens the gate: the first run is surely mid-work while
    the others start (a Python start takes seconds here)."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()

    def completion(self, prompt: str, seed: int, index: int) -> str:
        self.gate.wait(240)
        return super().completion(prompt, seed, index)


def test_a_second_process_is_refused_then_waits(prefect_api: str, tmp_path: Path) -> None:
    db = tmp_path / "shared.duckdb"
    gate = Gate()
    with InstantServer(behaviour=gate) as srv:
        first = _start(_solve(srv, db), prefect_api, tmp_path)
        _wait_requests(srv, 1)
        second = subprocess.run(_solve(srv, db), env=_env(prefect_api), cwd=tmp_path,
                                capture_output=True, text=True, timeout=300)
        out = second.stdout + second.stderr
        assert second.returncode != 0, out
        assert f"process {first.pid}" in out and "--wait" in out, out
        # --wait: waits while the first holds the run, then finds nothing left to do.
        waiter = _start(_solve(srv, db, "--wait"), prefect_api, tmp_path)
        deadline = time.monotonic() + 120
        while "waiting" not in _run_log(tmp_path):
            assert time.monotonic() < deadline and waiter.poll() is None, "the waiter did not wait"
            time.sleep(0.2)
        holder = current_holder(db, run_id_for("shared"))
        assert holder is not None and holder.pid == first.pid
        gate.gate.set()
        first_out, _ = first.communicate(timeout=300)
        assert first.returncode == 0, first_out
        waiter_out, _ = waiter.communicate(timeout=300)
        assert waiter.returncode == 0, waiter_out
        # The first finished the run meanwhile: the waiter has nothing left to do (it
        # answers from the store, issue 19.4, or shows the flow's 6/6).
        assert "6/6" in waiter_out or "all 6 problems are done; nothing to do" in waiter_out
        assert srv.behaviour.received == 6  # nothing asked twice
    sql = _cli(prefect_api, tmp_path, "sql", "SELECT count(*) FROM calls", "--db", str(db), "--csv")
    assert sql.stdout.strip().splitlines()[-1] == "6"


def _run_log(folder: Path) -> str:
    """Everything the CLI runs logged (their log files beside the database)."""
    return "".join(p.read_text(errors="replace") for p in folder.rglob("*.log"))


def test_a_killed_run_shows_interrupted_and_resumes(prefect_api: str, tmp_path: Path) -> None:
    db = tmp_path / "killed.duckdb"
    with InstantServer(behaviour=Behaviour(delay_s=0.4)) as srv:
        victim = _start(_solve(srv, db), prefect_api, tmp_path)
        _wait_requests(srv, 2)
        os.killpg(victim.pid, signal.SIGKILL)
        victim.wait()
        listed = _cli(prefect_api, tmp_path, "runs", "--db", str(db))
        assert listed.returncode == 0, listed.stdout + listed.stderr
        [row] = [line for line in listed.stdout.splitlines() if "shared" in line]
        assert "interrupted" in row and "running" not in row
        # The killed holder's lease is taken over at once; the run finishes.
        resumed = _cli(prefect_api, tmp_path, *_solve(srv, db)[3:])
        assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    listed = _cli(prefect_api, tmp_path, "runs", "--db", str(db))
    assert "completed" in [line for line in listed.stdout.splitlines() if "shared" in line][0]
