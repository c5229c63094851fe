"""The solve flow under a real Prefect test harness, against the STAND-IN instant
server where a test needs faults or exact control (garbage answers, a dead endpoint).
The same flow against the real vLLM server is in test_solve_vllm.py."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from proofflow.flows.common import RunConfigMismatch
from proofflow.flows.solve import run_solve
from proofflow.llm.client import EndpointError
from proofflow.problems import example_path
from proofflow.storage.db import Store
from proofflow.testing.instant_server import Behaviour, InstantServer

pytestmark = pytest.mark.prefect


def overrides(url: str, db: Path, **extra: object) -> dict:
    base = {
        "endpoint.model": "instant", "endpoint.base_urls": [url], "endpoint.backoff_s": 0.01,
        "endpoint.max_retries": 1, "storage.db_path": str(db), "storage.flush_interval_s": 0.05,
        "solve.samples": 3, "solve.repair_rounds": 1,
    }
    base.update(extra)
    return base


def counts(db: Path) -> dict[str, int]:
    store = Store(db)
    return {t: store.query(f"SELECT count(*) FROM {t}")[1][0][0]
            for t in ("problems", "samples", "verdicts", "results", "calls")}


def test_solve_stores_everything_and_rerun_is_a_no_op(prefect_api: str, tmp_path: Path) -> None:
    db = tmp_path / "run.duckdb"
    with InstantServer() as srv:
        summary = run_solve(str(example_path()), "t1", overrides=overrides(srv.base_url, db, **{"solve.limit": 5}))
        first_requests = srv.behaviour.requests
        before = counts(db)
        again = run_solve(str(example_path()), "t1", overrides=overrides(srv.base_url, db, **{"solve.limit": 5}))
        assert srv.behaviour.requests == first_requests  # nothing asked twice
    assert counts(db) == before
    assert summary["problems"] == 5 and summary["done"] == 5 and again["done"] == 5
    store = Store(db)
    _, rows = store.query("""
        SELECT problem_id, count(*) FILTER (WHERE stage = 'generate'),
               count(*) FILTER (WHERE stage = 'repair'),
               count(*) FILTER (WHERE stage = 'repair' AND parent_id IS NULL)
        FROM samples GROUP BY problem_id""")
    assert len(rows) == 5
    for _, generated, repaired, orphans in rows:
        assert generated == 3 and orphans == 0 and repaired <= 3
    # every sample checked; every repair's parent failed its check
    _, unchecked = store.query("""SELECT count(*) FROM samples s LEFT JOIN verdicts v
                                  ON v.sample_id = s.sample_id WHERE v.sample_id IS NULL""")
    assert unchecked == [(0,)]
    _, bad_parents = store.query("""SELECT count(*) FROM samples s JOIN verdicts v
        ON v.sample_id = s.parent_id AND v.verifier = 'answer' WHERE s.stage = 'repair' AND v.outcome = 'pass'""")
    assert bad_parents == [(0,)]
    _, tokens = store.query("SELECT min(prompt_tokens), min(completion_tokens), bool_and(tokens_exact) FROM samples")
    assert tokens[0][0] > 0 and tokens[0][1] > 0 and tokens[0][2] is True
    # one ok call per generate request and per repair
    _, calls = store.query("SELECT count(*) FROM calls WHERE status = 'ok'")
    assert calls[0][0] == first_requests
    run = store.get_run("t1")
    assert run is not None and run.status == "completed"


def test_garbage_answers_are_fail_verdicts_not_crashes(prefect_api: str, tmp_path: Path) -> None:
    db = tmp_path / "garbage.duckdb"
    with InstantServer(behaviour=Behaviour(model="instant", text="}}}{{ \x00 ### ")) as srv:
        summary = run_solve(str(example_path()), "g", overrides=overrides(srv.base_url, db, **{"solve.limit": 3}))
    assert summary["done"] == 3 and summary["solved"] == 0
    _, outcomes = Store(db).query("SELECT DISTINCT outcome, reason FROM verdicts")
    assert outcomes == [("fail", "no_answer")]
    _, results = Store(db).query("SELECT selected_answer, correct FROM results")
    assert results == [(None, False)] * 3


def test_empty_answers_are_fail_verdicts(prefect_api: str, tmp_path: Path) -> None:
    db = tmp_path / "empty.duckdb"
    with InstantServer(behaviour=Behaviour(model="instant", text="")) as srv:
        run_solve(str(example_path()), "e", overrides=overrides(srv.base_url, db, **{"solve.limit": 2}))
    _, outcomes = Store(db).query("SELECT DISTINCT outcome FROM verdicts")
    assert outcomes == [("fail",)]


def _dead_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}/v1"


def test_dead_endpoint_fails_clearly_and_keeps_what_was_stored(prefect_api: str, tmp_path: Path) -> None:
    db = tmp_path / "dead.duckdb"
    with InstantServer() as srv:
        run_solve(str(example_path()), "d", overrides=overrides(srv.base_url, db, **{"solve.limit": 2}))
    kept = counts(db)
    with pytest.raises(EndpointError, match="unreachable after 2 attempt"):
        run_solve(str(example_path()), "d", overrides=overrides(_dead_url(), db, **{"solve.limit": 4}))
    after = counts(db)
    assert after["samples"] == kept["samples"] and after["results"] == kept["results"]
    assert after["problems"] == 4  # the new problems were registered before the failure
    _, failed = Store(db).query("SELECT count(*) FROM calls WHERE status = 'error'")
    assert failed[0][0] >= 2  # every failed attempt is on record
    assert Store(db).get_run("d").status == "failed"  # type: ignore[union-attr]
    with InstantServer() as srv:  # resume: only the two new problems are asked for
        summary = run_solve(str(example_path()), "d", overrides=overrides(srv.base_url, db, **{"solve.limit": 4}))
        _, per_problem = Store(db).query(
            "SELECT problem_id, count(*) FROM samples WHERE stage = 'generate' GROUP BY ALL")
        assert sorted(n for _, n in per_problem) == [3, 3, 3, 3]
        generate_calls = srv.behaviour.requests
    assert summary["done"] == 4
    _, ok_generate = Store(db).query("SELECT count(*) FROM calls WHERE status='ok' AND stage='generate'")
    assert ok_generate[0][0] == 4  # 2 before, 2 after: never redone
    assert generate_calls >= 2


def test_resuming_with_other_settings_is_refused(prefect_api: str, tmp_path: Path) -> None:
    db = tmp_path / "mismatch.duckdb"
    with InstantServer() as srv:
        run_solve(str(example_path()), "m", overrides=overrides(srv.base_url, db, **{"solve.limit": 1}))
        with pytest.raises(RunConfigMismatch, match="samples"):
            run_solve(str(example_path()), "m",
                      overrides=overrides(srv.base_url, db, **{"solve.limit": 1, "solve.samples": 5}))


def test_chunked_tasks_give_the_same_rows(prefect_api: str, tmp_path: Path) -> None:
    with InstantServer() as srv:
        a = run_solve(str(example_path()), "c",
                      overrides=overrides(srv.base_url, tmp_path / "a.duckdb", **{"solve.limit": 6}))
        b = run_solve(str(example_path()), "c", overrides=overrides(
            srv.base_url, tmp_path / "b.duckdb", **{"solve.limit": 6, "solve.problems_per_task": 4}))
    ids = [Store(tmp_path / f).query("SELECT sample_id, completion FROM samples ORDER BY 1")[1]
           for f in ("a.duckdb", "b.duckdb")]
    assert ids[0] == ids[1] and len(ids[0]) >= 18
    keys = ("solved", "pass_at_1", "samples")
    assert {k: a[k] for k in keys} == {k: b[k] for k in keys}


def test_artifacts_are_published(prefect_api: str, tmp_path: Path) -> None:
    import httpx

    with InstantServer() as srv:
        run_solve(str(example_path()), "art",
                  overrides=overrides(srv.base_url, tmp_path / "art.duckdb", **{"solve.limit": 2}))
    body = {"artifacts": {"key": {"like_": "proofflow-%-art"}}, "limit": 50, "offset": 0, "sort": "CREATED_DESC"}
    arts = httpx.post(f"{prefect_api}/artifacts/filter", json=body, timeout=30).json()
    kinds = {a["type"] for a in arts}
    assert {"progress", "table", "markdown"} <= kinds
    progress = next(a for a in arts if a["type"] == "progress")
    assert progress["data"] == 100.0
    assert "2/2 problems done" in progress["description"] and "tokens" in progress["description"]
    table = next(a for a in arts if a["type"] == "table")
    data = table["data"] if isinstance(table["data"], (list, dict)) else json.loads(table["data"])
    assert {"metric": "finished", "value": "2/2"} in data, data
    markdown = next(a for a in arts if a["type"] == "markdown")
    assert "proofflow run `art`" in markdown["data"] and "pass@1" in markdown["data"]


def _task_runs(api: str, flow_run_name: str) -> list[dict]:
    import httpx

    body = {"flow_runs": {"name": {"any_": [flow_run_name]}}, "limit": 200, "offset": 0}
    return httpx.post(f"{api}/task_runs/filter", json=body, timeout=30).json()


def _artifacts(api: str, run_name: str) -> dict[str, dict]:
    import httpx

    body = {"artifacts": {"key": {"like_": f"proofflow-%-{run_name}"}}, "limit": 50, "offset": 0,
            "sort": "CREATED_DESC"}
    newest: dict[str, dict] = {}
    for art in httpx.post(f"{api}/artifacts/filter", json=body, timeout=30).json():
        newest.setdefault(art["type"], art)
    return newest


def test_a_failed_run_settles_keeps_readable_names_and_publishes_its_partial_summary(
        prefect_api: str, tmp_path: Path) -> None:
    """Issue 11.3, flow side: the endpoint starts failing mid-run. The run fails with the
    endpoint's error; no task sees a closed client (in-flight tasks settle before the
    client closes); every task run has a readable name (no "not ready" runs with
    Prefect's default names); the summary and a final progress artifact are published."""
    db = tmp_path / "failing.duckdb"
    with InstantServer(behaviour=Behaviour(model="instant", fail_from=4)) as srv, pytest.raises(EndpointError):
        run_solve(str(example_path()), "failing", overrides=overrides(
            srv.base_url, db, **{"solve.limit": 6, "solve.problems_in_flight": 3}))
    assert Store(db).get_run("failing").status == "failed"  # type: ignore[union-attr]
    runs = _task_runs(prefect_api, "solve · examples · failing")
    assert runs
    for run in runs:
        assert " · " in run["name"], f"task run without a readable name: {run['name']}"
        message = (run.get("state") or {}).get("message") or ""
        assert "client has been closed" not in message, message
    assert any(r["state"]["type"] == "FAILED" for r in runs)
    arts = _artifacts(prefect_api, "failing")
    assert {"progress", "table", "markdown"} <= set(arts)
    _, ((done,),) = Store(db).query("SELECT count(*) FROM results")
    assert f"{done}/6 problems done" in arts["progress"]["description"]


def test_progress_counts_the_runs_totals_after_resume_and_stages_name_their_round(
        prefect_api: str, tmp_path: Path) -> None:
    """Issue 11.4 and 11.5, flow side."""
    db = tmp_path / "totals.duckdb"
    with InstantServer(behaviour=Behaviour(model="instant", answers=("7",))) as srv:
        run_solve(str(example_path()), "totals", overrides=overrides(srv.base_url, db, **{"solve.limit": 2}))
        run_solve(str(example_path()), "totals", overrides=overrides(srv.base_url, db, **{"solve.limit": 4}))
    _, ((tokens,),) = Store(db).query("SELECT sum(prompt_tokens + completion_tokens) FROM samples")
    progress = _artifacts(prefect_api, "totals")["progress"]
    assert "4/4 problems done" in progress["description"]
    assert f"{tokens:,} tokens" in progress["description"], (tokens, progress["description"])
    runs = [r["name"] for r in _task_runs(prefect_api, "solve · examples · totals")]
    names = set(runs)
    # One task run per stage of a unit (4 problems a unit): each run had one unit, whose
    # requests of a stage went out in one `ask` (issue 19: a task run costs ~28 ms of CPU).
    for stage in ("generate · ", "repair · r1 · ", "verify · r0 · ", "select · "):
        assert sum(n.startswith(stage) for n in runs) == 2, (stage, sorted(runs))
    assert any(n.startswith("verify · r0 · examples · instant · ") for n in names), names
    assert any(n.startswith("verify · r1 · examples · instant · ") for n in names), names
    assert any(n.startswith("repair · r1 · examples · instant · ") for n in names), names


def test_data_set_and_problem_labels() -> None:
    from proofflow.flows.common import problem_label, problem_set_name
    from proofflow.problems import Problem

    assert problem_set_name("/data/gsm8k/test.jsonl") == "gsm8k"
    assert problem_set_name("/data/math500/test.jsonl") == "math500"
    assert problem_set_name("/data/minif2f-valid.jsonl") == "minif2f-valid"
    assert problem_set_name("/data/gsm8k/test.jsonl", "gsm8k-hard") == "gsm8k-hard"
    p = Problem(id="x", source="f", source_id="line 12", statement="s", reference_answer="1")
    assert problem_label(p, "gsm8k") == "gsm8k-12"
    q = Problem(id="y", source="f", source_id="test/algebra/1.json", statement="s", reference_answer="1")
    assert problem_label(q, "math500") == "test/algebra/1.json"
