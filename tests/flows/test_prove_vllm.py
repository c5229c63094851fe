"""The prove flows (whole-proof and DSP+) on bundled Coq examples against the REAL local
vLLM server (SmolLM2-135M on CPU), the real Coq checker and a real Prefect harness.

The model is far too weak to prove anything; what is asserted is that every stage's
output is stored with its tokens and parent, every candidate is judged by the audit,
every hole attempt has its verdict, and a rerun asks the model and the checker nothing.
The server may be shared with other test sessions: its own counters are only a bound."""

from __future__ import annotations

import shutil
from pathlib import Path

import httpx
import pytest

from proofflow.flows.prove import run_prove
from proofflow.llm.server import ServerStatus
from proofflow.storage.db import Store

pytestmark = [pytest.mark.vllm, pytest.mark.prefect, pytest.mark.slow,
              pytest.mark.skipif(shutil.which("coqtop") is None, reason="Coq not installed")]


def finished_sequences(st: ServerStatus) -> float:
    text = httpx.get(st.base_url.removesuffix("/v1") + "/metrics", timeout=10).text
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("vllm:request_success_total{"))


def q(db: Path, sql: str) -> list[tuple]:
    return Store(db).query(sql)[1]


@pytest.mark.parametrize("strategy", ["whole", "dsp"])
def test_prove_flow_on_real_model_stores_and_judges_everything(
        vllm_server: ServerStatus, prefect_api: str, tmp_path: Path, strategy: str) -> None:
    db = tmp_path / f"{strategy}.duckdb"
    cfg = {
        "endpoint.model": vllm_server.model, "endpoint.base_urls": [vllm_server.base_url],
        "storage.db_path": str(db), "prove.strategy": strategy, "prove.samples": 2 if strategy == "whole" else 1,
        "prove.repair_rounds": 1, "prove.repair_depth": 1, "prove.hole_budget": 1,
        "prove.limit": 2, "prove.workers": 1, "sampling.max_tokens": 96, "sampling.temperature": 0.8,
    }
    before = finished_sequences(vllm_server)
    summary = run_prove("coq-examples", f"real-{strategy}", overrides=cfg)
    after = finished_sequences(vllm_server)
    assert summary["problems"] == 2 and summary["done"] == 2

    model_samples = q(db, f"""SELECT count(*), min(prompt_tokens), min(completion_tokens), count(call_id),
                                    sum(completion_tokens) FROM samples WHERE model = '{vllm_server.model}'""")[0]
    n, min_prompt, min_completion, with_call, completion_sum = model_samples
    assert n > 0 and min_prompt > 0 and min_completion > 0 and with_call == n
    # >=, not ==: other test sessions share this server
    assert after - before >= n
    assert q(db, "SELECT sum(completion_tokens) FROM calls WHERE status = 'ok'")[0][0] == completion_sum
    stages = {r[0] for r in q(db, "SELECT DISTINCT stage FROM samples")}
    assert ({"generate"} if strategy == "whole" else {"draft", "sketch"}) <= stages
    # every candidate judged by the audit (and the raw checker); every hole attempt judged
    assert q(db, """SELECT count(*) FROM samples s WHERE s.stage IN ('generate', 'sketch', 'mask', 'assemble')
                    AND NOT EXISTS (SELECT 1 FROM verdicts v WHERE v.sample_id = s.sample_id
                                    AND v.verifier = 'formal_audit')""") == [(0,)]
    assert q(db, """SELECT count(*) FROM samples s WHERE s.stage = 'prove_hole' AND NOT EXISTS
                    (SELECT 1 FROM verdicts v WHERE v.sample_id = s.sample_id AND v.verifier = 'coq_hole')""") == [(0,)]
    assert q(db, """SELECT count(*) FROM samples WHERE parent_id IS NOT NULL
                    AND parent_id NOT IN (SELECT sample_id FROM samples)""") == [(0,)]
    reasons = {r[0] for r in q(db, "SELECT DISTINCT coalesce(reason, 'pass') FROM verdicts "
                                   "WHERE verifier = 'formal_audit'")}
    assert reasons  # judged: pass, or a rejection reason of the audit table
    assert q(db, "SELECT count(*) FROM results") == [(2,)]

    rows = q(db, "SELECT (SELECT count(*) FROM samples), (SELECT count(*) FROM verdicts), (SELECT count(*) FROM calls)")
    again = run_prove("coq-examples", f"real-{strategy}", overrides=cfg)
    # no new request (every attempt, failed or not, is a calls row) and no new check
    assert again["checks_run"] == 0
    assert q(db, "SELECT (SELECT count(*) FROM samples), (SELECT count(*) FROM verdicts), "
                 "(SELECT count(*) FROM calls)") == rows
