"""deployments/prefect.yaml against a real Prefect server: it deploys with its
schedules, and a process worker runs a deployment's flow to completion."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import httpx
import pytest

from proofflow.flows.common import expand_run_name
from proofflow.testing.instant_server import InstantServer
from proofflow.storage.db import Store

pytestmark = [pytest.mark.prefect, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]


def prefect(api: str, *args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    env = {**os.environ, "PREFECT_API_URL": api, "PROOFFLOW_ROOT": str(ROOT)}
    proc = subprocess.run([sys.executable, "-m", "prefect", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


def test_run_name_templates() -> None:
    now = datetime(2026, 11, 24, 9, 5, tzinfo=timezone.utc)
    assert expand_run_name("gsm8k-{date}", now) == "gsm8k-2026-11-24"
    assert expand_run_name("x-{datetime}", now) == "x-2026-11-24T0905"
    assert expand_run_name("plain", now) == "plain"


def test_deploy_and_run_through_a_worker(prefect_api: str, tmp_path: Path) -> None:
    prefect(prefect_api, "work-pool", "create", "proofflow-process", "--type", "process", "--overwrite")
    prefect(prefect_api, "--no-prompt", "deploy", "--all", "--prefect-file", "deployments/prefect.yaml")
    deployments = httpx.post(f"{prefect_api}/deployments/filter", json={"limit": 50, "offset": 0}, timeout=30).json()
    by_name = {d["name"]: d for d in deployments}
    assert {"gsm8k-nightly", "math500-weekly", "examples-smoke"} <= set(by_name)
    nightly = by_name["gsm8k-nightly"]
    assert [s["schedule"]["cron"] for s in nightly["schedules"]] == ["0 2 * * *"]
    assert nightly["parameters"]["overrides"]["solve.samples"] == 8
    assert nightly["work_pool_name"] == "proofflow-process"

    db = tmp_path / "deployed.duckdb"
    with InstantServer() as srv:
        params = {
            "problem_file": "proofflow/problems/examples/examples.jsonl",
            "run_name": "deployed-{date}",
            "overrides": {"endpoint.model": "instant", "endpoint.base_urls": [srv.base_url],
                          "storage.db_path": str(db), "solve.samples": 2, "solve.limit": 3},
        }
        flow_run = httpx.post(f"{prefect_api}/deployments/{by_name['examples-smoke']['id']}/create_flow_run",
                              json={"parameters": params}, timeout=30).json()
        prefect(prefect_api, "worker", "start", "--pool", "proofflow-process", "--run-once", timeout=300)
        deadline = time.monotonic() + 120
        state = None
        while time.monotonic() < deadline:
            state = httpx.get(f"{prefect_api}/flow_runs/{flow_run['id']}", timeout=30).json()["state"]["type"]
            if state in ("COMPLETED", "FAILED", "CRASHED"):
                break
            time.sleep(1)
    assert state == "COMPLETED"
    run = Store(db).get_run(expand_run_name("deployed-{date}"))
    assert run is not None and run.status == "completed"
    assert Store(db).query("SELECT count(*) FROM results")[1][0][0] == 3
