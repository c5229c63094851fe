"""A model request in flight when the process is SIGKILLed leaves a `calls` row (issue
20.14: 115 such requests of a 20-kill series left none, so a run's recorded cost was lower
than what the endpoint served). The client records each attempt before sending it
(storage/in_flight.py, through the writer's journal); the next process that opens the
database replays it as `interrupted`, with its prompt tokens counted by the server's
/tokenize. The CLI runs as a real subprocess against the STAND-IN instant server, which
holds one request (the second: the first repair) for minutes."""

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

SAMPLES = 4
SLOW_S = 300.0


def _count(db: Path, where: str) -> int:
    try:
        return Store(db, lock_timeout_s=2).query(f"SELECT count(*) FROM calls WHERE {where}")[1][0][0]
    except StorageError:  # not created yet, or the writer holds it this instant
        return 0


def test_a_call_in_flight_at_sigkill_shows_interrupted_with_its_prompt_tokens(
        prefect_api: str, tmp_path: Path) -> None:
    db = tmp_path / "inflight.duckdb"
    args = ["solve", str(example_path()), "--model", "instant", "-n", str(SAMPLES), "-r", "1",
            "--limit", "1", "--db", str(db), "--run", "inflight"]
    held = Behaviour(model="instant", answers=("-999",), slow_requests={2: SLOW_S})
    with InstantServer(behaviour=held) as srv:
        srv._httpd.handle_error = lambda *a: None  # type: ignore[method-assign]  # the killed client's broken pipe
        env = {**os.environ, "PREFECT_API_URL": prefect_api}
        proc = subprocess.Popen([sys.executable, "-m", "proofflow.cli", *args, "--base-url", srv.base_url],
                                cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True)
        try:
            deadline = time.monotonic() + 120
            while _count(db, "stage = 'repair' AND status = 'ok'") < SAMPLES - 1:
                assert proc.poll() is None, "the CLI ended before the repair stage"
                assert time.monotonic() < deadline, "the fast repairs never showed up in the calls table"
                time.sleep(0.2)
            time.sleep(1.5)  # a few flush intervals
            # Before the kill: the held call is in the journal only, not in the database.
            assert _count(db, "status = 'interrupted'") == 0
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        assert held.received == 1 + SAMPLES and held.requests == SAMPLES  # exactly one held

    store = Store(db)
    with store.connect():  # opening for writing replays the killed process's journal
        pass
    _, interrupted = store.query("""SELECT stage, status, prompt_tokens, completion_tokens, error
                                    FROM calls WHERE status = 'interrupted'""")
    assert len(interrupted) == 1, interrupted
    stage, _, prompt_tokens, completion_tokens, error = interrupted[0]
    assert stage == "repair" and completion_tokens is None
    assert prompt_tokens is not None and prompt_tokens > 0
    assert "counted by the server's /tokenize" in error and "completion tokens" in error
    _, answered = store.query("SELECT count(*) FROM calls WHERE status = 'ok'")
    assert answered[0][0] == 1 + SAMPLES - 1  # every answered call kept, none replaced

    with InstantServer(behaviour=Behaviour(model="instant", answers=("-999",))) as srv:
        summary = run_solve(str(example_path()), "inflight", overrides={
            "endpoint.model": "instant", "endpoint.base_urls": [srv.base_url], "storage.db_path": str(db),
            "solve.samples": SAMPLES, "solve.repair_rounds": 1, "solve.limit": 1})
        [(prompt, _, _)] = srv.behaviour.answered  # only the held repair is asked again
    assert summary["done"] == 1
    # the same prompt, counted by the same server: the interrupted row's tokens are the real ones
    assert prompt_tokens == len(prompt.split())
    _, rows = store.query("SELECT status, count(*) FROM calls GROUP BY status ORDER BY status")
    assert rows == [("interrupted", 1), ("ok", 1 + SAMPLES)]
    _, per_stage = store.query("SELECT stage, count(*) FROM samples GROUP BY stage ORDER BY stage")
    assert per_stage == [("generate", SAMPLES), ("repair", SAMPLES)]
