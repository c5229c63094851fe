"""Nothing paid for is lost (issue 12.2): every model answer's samples are stored as soon
as that answer arrives, not when the whole stage has. The CLI runs as a real subprocess
against the STAND-IN instant server (one slow request among a stage's fast ones) and is
killed with SIGKILL mid-stage; then the run is resumed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from proofflow.flows.solve import run_solve
from proofflow.problems import example_path
from proofflow.storage.db import StorageError, Store
from proofflow.testing.instant_server import Behaviour, InstantServer

pytestmark = pytest.mark.prefect

# Every answer is wrong ("-999"), so each of the 4 generated samples is repaired: the
# generate request is request 1, the four repairs are requests 2-5; request 2 is slow.
SAMPLES = 4
SLOW_S = 300.0


def _ok_repair_calls(db: Path) -> int:
    try:
        return Store(db, lock_timeout_s=2).query(
            "SELECT count(*) FROM calls WHERE stage = 'repair' AND status = 'ok'")[1][0][0]
    except StorageError:  # not created yet, or the writer holds it this instant
        return 0


def test_killed_mid_stage_keeps_every_answered_call_and_resume_asks_nothing_twice(
        prefect_api: str, tmp_path: Path) -> None:
    db = tmp_path / "crash.duckdb"
    args = ["solve", str(example_path()), "--model", "instant", "-n", str(SAMPLES), "-r", "1",
            "--limit", "1", "--db", str(db), "--run", "crash"]
    slow = Behaviour(model="instant", answers=("-999",), slow_requests={2: SLOW_S})
    with InstantServer(behaviour=slow) as srv:
        env = {**os.environ, "PREFECT_API_URL": prefect_api}
        proc = subprocess.Popen([sys.executable, "-m", "proofflow.cli", *args, "--base-url", srv.base_url],
                                cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True)
        try:
            deadline = time.monotonic() + 120
            while _ok_repair_calls(db) < SAMPLES - 1:  # the three fast repairs answered
                assert proc.poll() is None, "the CLI ended before the repair stage"
                assert time.monotonic() < deadline, "the fast repairs never showed up in the calls table"
                time.sleep(0.2)
            time.sleep(1.5)  # a few flush intervals: whatever the run stores, it has stored
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
            try:
                os.killpg(proc.pid, signal.SIGKILL)  # checker workers it may have left
            except ProcessLookupError:
                pass
        answered_before = list(srv.behaviour.answered)
        assert srv.behaviour.received == 1 + SAMPLES  # the slow one still hangs

    store = Store(db)
    _, lost = store.query("""
        SELECT c.call_id, c.stage FROM calls c
        WHERE c.status = 'ok' AND NOT EXISTS (SELECT 1 FROM samples s WHERE s.call_id = c.call_id)""")
    assert lost == [], f"answered calls whose samples were never stored: {lost}"
    _, repairs = store.query("SELECT count(*) FROM samples WHERE stage = 'repair'")
    assert repairs[0][0] == SAMPLES - 1

    with InstantServer(behaviour=Behaviour(model="instant", answers=("-999",))) as srv:
        summary = run_solve(str(example_path()), "crash", overrides={
            "endpoint.model": "instant", "endpoint.base_urls": [srv.base_url], "storage.db_path": str(db),
            "solve.samples": SAMPLES, "solve.repair_rounds": 1, "solve.limit": 1})
        asked_again = [(p, seed) for p, seed, _ in srv.behaviour.answered]
    assert summary["done"] == 1
    assert len(asked_again) == 1, "only the slow repair is asked on resume"
    assert not set(asked_again) & {(p, seed) for p, seed, _ in answered_before}
    _, per_stage = store.query("SELECT stage, count(*) FROM samples GROUP BY stage ORDER BY stage")
    assert per_stage == [("generate", SAMPLES), ("repair", SAMPLES)]
