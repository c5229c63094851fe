"""The solve flow end to end against the REAL local vLLM server (SmolLM2-135M on CPU)
and a real Prefect test harness. The model is weak: these tests assert on storage and
bookkeeping (token counts, request counts, resume), never on answers being right."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from proofflow.flows.solve import run_solve
from proofflow.llm.server import ServerStatus
from proofflow.problems import example_path
from proofflow.storage.db import Store

pytestmark = [pytest.mark.vllm, pytest.mark.prefect, pytest.mark.slow]


def finished_sequences(st: ServerStatus) -> float:
    """vLLM's own count of sequences it generated to the end (a request with n=2 adds 2);
    aborted ones (a killed client's) are left out. Assumes nothing else uses the server
    meanwhile, as in CI."""
    text = httpx.get(st.base_url.removesuffix("/v1") + "/metrics", timeout=10).text
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("vllm:request_success_total{")
               and ('finished_reason="stop"' in line or 'finished_reason="length"' in line))


def settings_for(st: ServerStatus, db: Path, **extra: object) -> dict:
    base = {
        "endpoint.model": st.model, "endpoint.base_urls": [st.base_url], "storage.db_path": str(db),
        "solve.samples": 2, "solve.repair_rounds": 1, "sampling.max_tokens": 48,
        "sampling.temperature": 0.8, "solve.limit": 3,
    }
    base.update(extra)
    return base


def test_real_run_stores_real_tokens_and_rerun_asks_nothing(
    vllm_server: ServerStatus, prefect_api: str, tmp_path: Path
) -> None:
    db = tmp_path / "vllm.duckdb"
    before = finished_sequences(vllm_server)
    summary = run_solve(str(example_path()), "real", overrides=settings_for(vllm_server, db))
    after_first = finished_sequences(vllm_server)
    store = Store(db)
    _, (row,) = store.query("""SELECT count(*), count(*) FILTER (WHERE stage='generate'),
        min(prompt_tokens), min(completion_tokens), bool_and(tokens_exact), sum(completion_tokens),
        count(DISTINCT seed) FROM samples""")
    n_samples, n_generate, min_prompt, min_completion, exact, completion_sum, seeds = row
    assert n_generate == 6 and n_samples >= 6 and summary["samples"] == n_samples
    assert min_prompt > 0 and min_completion > 0 and exact is True
    assert after_first - before == n_samples  # vLLM finished exactly what we stored
    _, (calls,) = store.query("SELECT count(*), sum(completion_tokens) FROM calls WHERE status = 'ok'")
    assert calls[1] == completion_sum  # per-sample tokens add up to the server's usage
    assert seeds >= 3  # one seed per request, derived from the sample key
    _, (verdicts,) = store.query("SELECT count(*), count(*) FILTER (WHERE outcome IN ('pass','fail')) FROM verdicts")
    assert verdicts[0] == n_samples and verdicts[1] == n_samples  # every sample judged
    rows_before = store.query("SELECT (SELECT count(*) FROM samples), (SELECT count(*) FROM verdicts), "
                              "(SELECT count(*) FROM calls), (SELECT count(*) FROM results)")[1]

    again = run_solve(str(example_path()), "real", overrides=settings_for(vllm_server, db))
    assert finished_sequences(vllm_server) == after_first  # no new model requests
    assert store.query("SELECT (SELECT count(*) FROM samples), (SELECT count(*) FROM verdicts), "
                       "(SELECT count(*) FROM calls), (SELECT count(*) FROM results)")[1] == rows_before
    assert again["done"] == 3


def test_killed_run_resumes_and_finishes_each_problem_once(
    vllm_server: ServerStatus, prefect_api: str, tmp_path: Path
) -> None:
    db = tmp_path / "killed.duckdb"
    args = [sys.executable, "-m", "proofflow.cli", "solve", str(example_path()), "--run", "killed",
            "--db", str(db), "--base-url", vllm_server.base_url, "--model", str(vllm_server.model),
            "-n", "2", "-r", "0", "--max-tokens", "48", "--limit", "6", "--problems-in-flight", "2"]
    # One problem a unit, so results are stored one by one and the kill lands between them
    # (the default unit of 4 problems stores 4 results at once: 6 of 6 before a poll saw 4).
    env = {**os.environ, "PREFECT_API_URL": prefect_api, "PROOFFLOW_SOLVE__PROBLEMS_PER_TASK": "1"}
    proc = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)
    store = Store(db, lock_timeout_s=10)
    done_at_kill = 0
    deadline = time.monotonic() + 300
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if db.exists():
                try:
                    done_at_kill = store.query("SELECT count(*) FROM results")[1][0][0]
                except Exception:  # schema not there yet
                    done_at_kill = 0
                if done_at_kill >= 1:
                    break
            time.sleep(0.2)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # a crash, not a polite stop
        proc.wait()
    assert 1 <= done_at_kill < 6, f"kill should land mid-run (done={done_at_kill})"
    _, finished_before = store.query("SELECT problem_id FROM results")
    finished_before_ids = {r[0] for r in finished_before}

    # the same command again resumes the run
    resumed = subprocess.run(args, env=env, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert store.query("SELECT count(*) FROM results")[1][0][0] == 6
    _, per_problem = store.query("""SELECT problem_id, count(*) FILTER (WHERE stage='generate'),
        (SELECT count(*) FROM results r WHERE r.problem_id = s.problem_id) FROM samples s GROUP BY problem_id""")
    assert len(per_problem) == 6
    assert all(gen == 2 and results == 1 for _, gen, results in per_problem)
    _, redo = store.query("""SELECT problem_id, count(*) FROM calls WHERE status = 'ok' AND stage = 'generate'
                             GROUP BY problem_id""")
    for problem_id, ok_calls in redo:
        if problem_id in finished_before_ids:
            assert ok_calls == 1, "a problem finished before the kill was asked again"


def test_csv_strategy_against_the_real_model(vllm_server: ServerStatus, prefect_api: str, tmp_path: Path) -> None:
    """Code-based self-verification end to end: whatever the model writes, every sample
    gets an answer verdict and a sandboxed self-verification verdict, both stored."""
    db = tmp_path / "csv.duckdb"
    run_solve(str(example_path()), "csv-real", overrides=settings_for(
        vllm_server, db, **{"solve.strategy": "csv", "solve.selection": "weighted", "solve.repair_rounds": 1,
                            "sampling.max_tokens": 128, "solve.limit": 2}))
    store = Store(db)
    _, rows = store.query("""SELECT s.sample_id, list(v.verifier ORDER BY v.verifier),
                                    list(v.outcome ORDER BY v.verifier)
                             FROM samples s JOIN verdicts v USING (sample_id) GROUP BY s.sample_id""")
    assert len(rows) >= 4
    for _, verifiers, outcomes in rows:
        assert verifiers == ["answer", "self_verify"]
        assert all(o in ("pass", "fail", "error", "timeout") for o in outcomes)
    _, reasons = store.query("SELECT DISTINCT reason FROM verdicts WHERE verifier = 'self_verify'")
    assert reasons and all(r[0] for r in reasons), reasons  # every verdict says why
