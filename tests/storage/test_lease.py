"""One process at a time per run (issue 12.3): the run lease, with real processes.

A second process is told who holds the run (pid, host, command) and does not start;
with wait it starts when the holder finishes; a SIGKILLed holder's lease is taken over
at once, and `list_runs` shows its run `interrupted` instead of `running` forever.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from proofflow.storage.db import StorageError, Store
from proofflow.storage.lease import RunHeldError, RunLease, current_holder, lock_path
from proofflow.storage.records import RunRow

HOLD = textwrap.dedent(
    """
    import sys, time
    from proofflow.storage.lease import RunLease
    lease = RunLease(sys.argv[1], sys.argv[2], "demo").acquire()
    print("held", flush=True)
    time.sleep(float(sys.argv[3]))
    lease.release()
    print("released", flush=True)
    time.sleep(float(sys.argv[4]) if len(sys.argv) > 4 else 0)
    """
)


def _holder(db: Path, run_id: str, seconds: float, linger: float = 0.0) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(db), run_id, str(seconds), str(linger)],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc


def test_second_process_is_refused_with_the_holder_named(tmp_path: Path) -> None:
    db = tmp_path / "runs.duckdb"
    proc = _holder(db, "r_1", 60)
    try:
        with pytest.raises(RunHeldError) as err:
            RunLease(db, "r_1", "demo").acquire()
        message = str(err.value)
        assert f"process {proc.pid} on {socket.gethostname()}" in message
        assert "python" in message and "'demo'" in message and "--wait" in message
        assert isinstance(err.value, StorageError)  # the CLI prints it as one line
        holder = current_holder(db, "r_1")
        assert holder is not None and holder.pid == proc.pid
        # Another run on the same database is not held by it.
        with RunLease(db, "r_2"):
            pass
    finally:
        proc.kill()
        proc.wait()


def test_a_killed_holder_is_taken_over_at_once(tmp_path: Path) -> None:
    db = tmp_path / "runs.duckdb"
    proc = _holder(db, "r_1", 60)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert current_holder(db, "r_1") is None
    start = time.monotonic()
    lease = RunLease(db, "r_1").acquire()
    try:
        assert time.monotonic() - start < 1.0
        assert lease.previous is not None and lease.previous.pid == proc.pid
        holder = current_holder(db, "r_1")
        assert holder is not None and holder.pid == os.getpid()
    finally:
        lease.release()
    assert current_holder(db, "r_1") is None


def test_wait_starts_when_the_holder_finishes(tmp_path: Path) -> None:
    db = tmp_path / "runs.duckdb"
    proc = _holder(db, "r_1", 1.5, linger=30)
    told: list[object] = []
    try:
        start = time.monotonic()
        lease = RunLease(db, "r_1").acquire(wait=True, poll_s=0.05, on_wait=told.append)
        waited = time.monotonic() - start
        assert 0.5 < waited < 20, waited
        assert len(told) == 1 and getattr(told[0], "pid", None) == proc.pid
        lease.release()
    finally:
        proc.kill()
        proc.wait()


def test_wait_with_a_timeout_gives_up(tmp_path: Path) -> None:
    db = tmp_path / "runs.duckdb"
    proc = _holder(db, "r_1", 60)
    try:
        with pytest.raises(RunHeldError):
            RunLease(db, "r_1").acquire(wait=True, timeout_s=0.6, poll_s=0.05)
    finally:
        proc.kill()
        proc.wait()


def test_the_lock_does_not_outlive_its_holder_through_children(tmp_path: Path) -> None:
    # A child started by the holder (a server, a sandbox) must not keep the run locked
    # after the holder is killed.
    db = tmp_path / "runs.duckdb"
    script = HOLD.replace('print("held", flush=True)',
                          'import subprocess; subprocess.Popen(["sleep", "30"]); print("held", flush=True)')
    proc = subprocess.Popen([sys.executable, "-c", script, str(db), "r_1", "60"],
                            stdout=subprocess.PIPE, text=True, start_new_session=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    try:
        assert current_holder(db, "r_1") is None
    finally:
        os.killpg(proc.pid, signal.SIGKILL)


def _run(run_id: str, status: str = "running") -> RunRow:
    return RunRow(run_id, f"name-{run_id}", "gvr", "set", "m", "{}", "h", "0", status)


def test_list_runs_shows_interrupted_when_the_holder_is_gone(tmp_path: Path) -> None:
    db = tmp_path / "runs.duckdb"
    store = Store(db)
    for run_id in ("r_live", "r_dead"):
        store.start_run(_run(run_id))
    store.start_run(_run("r_done", "completed"))
    store.finish_run("r_done", "completed")
    live = _holder(db, "r_live", 60)
    dead = _holder(db, "r_dead", 60)
    os.kill(dead.pid, signal.SIGKILL)
    dead.wait()
    try:
        status = {r.run_id: r.status for r in store.list_runs()}
        assert status == {"r_live": "running", "r_dead": "interrupted", "r_done": "completed"}
        got = store.get_run("name-r_dead")
        assert got is not None and got.status == "interrupted"
    finally:
        live.kill()
        live.wait()
    assert lock_path(db, "r_live").parent == tmp_path / "runs.duckdb.work"


def test_report_summary_shows_interrupted_too(tmp_path: Path) -> None:
    from proofflow.storage import metrics

    db = tmp_path / "runs.duckdb"
    store = Store(db)
    store.start_run(_run("r_dead"))
    dead = _holder(db, "r_dead", 60)
    os.kill(dead.pid, signal.SIGKILL)
    dead.wait()
    [row] = metrics.run_summary_rows(store, ["r_dead"])
    assert row["status"] == "interrupted"


def test_an_unwritable_folder_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "db.duckdb.work"
    blocker.write_text("a file where the folder should be")
    with pytest.raises(StorageError, match="cannot create the lock file"):
        RunLease(tmp_path / "db.duckdb", "r_1").acquire()
