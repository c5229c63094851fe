"""The prove flows end to end on the REAL Lean 4 (the wasm build that
`python -m proofflow.verifiers.lean.install` puts in ~/.cache/proofflow/lean-wasm; CI installs
it) with a real Prefect harness and real DuckDB.

Checks go to the warm checker pool (one Lean process per run here, prove.workers = 1): a
process start costs 20-75 s on the wasm build, a check on a warm one well under a second.

Model outputs come from a RECORDED-COMPLETION stand-in (proofflow/testing/recorded_server.py)
in the tests named so: the completions are written here in plain sight, where a specific
good proof or sketch is needed. The tests named "real model" ask the REAL local vLLM server
(SmolLM2-135M on CPU), which proves next to nothing; there it is asserted that everything is
stored and judged, and that whatever counts as proved passed the audit.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from proofflow.flows.prove import run_prove
from proofflow.llm.server import ServerStatus
from proofflow.storage.db import Store
from proofflow.testing.recorded_server import RecordedServer, Recording

pytestmark = [pytest.mark.lean, pytest.mark.prefect, pytest.mark.slow]

FENCE = "```"


def lean(text: str) -> str:
    return f"Here is the proof.\n{FENCE}lean\n{text.strip()}\n{FENCE}\n"


def q(db: Path, sql: str) -> list[tuple[Any, ...]]:
    return Store(db).query(sql)[1]


def settings(url: str, model: str, db: Path, **extra: object) -> dict[str, object]:
    base: dict[str, object] = {
        "endpoint.model": model, "endpoint.base_urls": [url], "endpoint.max_retries": 0,
        "storage.db_path": str(db), "storage.flush_interval_s": 0.05,
        "prove.backend": "lean", "prove.lean_checker": "program", "prove.check_timeout_s": 240,
        "prove.samples": 1, "prove.workers": 1, "prove.problems_in_flight": 2,
        "prove.repair_rounds": 0, "prove.repair_depth": 0, "prove.hole_budget": 0,
        "sampling.max_tokens": 64,
    }
    base.update(extra)
    return base


# lean-examples' first two problems, both closed by omega: one good proof, one wrong one
WHOLE = {
    "theorem linear_two_vars": lean("""
theorem linear_two_vars (x y : Int) (h₁ : x + y = 10) (h₂ : x - y = 2) : x = 6 := by
  omega
"""),
    "theorem linear_system_int": lean("""
theorem linear_system_int (x y : Int) (h₁ : 2 * x + 3 * y = 12) (h₂ : x - y = 1) : x = 3 ∧ y = 2 := by
  exact h₂
"""),
}


def test_whole_proof_on_real_lean_passes_good_proof_and_rejects_wrong_one(
        prefect_api: str, tmp_path: Path) -> None:
    db = tmp_path / "whole.duckdb"
    with RecordedServer(Recording(answers=dict(WHOLE))) as srv:
        cfg = settings(srv.base_url, "recorded", db, **{"prove.strategy": "whole", "prove.limit": 2})
        summary = run_prove("lean-examples", "lean-whole", overrides=cfg)
    assert summary["problems"] == 2 and summary["done"] == 2 and summary["solved"] == 1
    assert q(db, "SELECT count(*) FROM samples WHERE stage = 'generate'") == [(2,)]
    # every sample judged by the raw checker and by the audit
    for verifier in ("lean", "formal_audit"):
        assert q(db, f"""SELECT count(*) FROM samples s WHERE NOT EXISTS (SELECT 1 FROM verdicts v
                         WHERE v.sample_id = s.sample_id AND v.verifier = '{verifier}')""") == [(0,)]
    audit = dict(q(db, """SELECT p.source_id, v.outcome || ':' || coalesce(v.reason, '') FROM samples s
                          JOIN problems p USING (problem_id) JOIN verdicts v USING (sample_id)
                          WHERE v.verifier = 'formal_audit'"""))
    assert audit["linear_two_vars"] == "pass:"
    assert audit["linear_system_int"].startswith("fail:") and audit["linear_system_int"] != "fail:"
    solved = dict(q(db, "SELECT p.source_id, r.solved FROM results r JOIN problems p USING (problem_id)"))
    assert solved == {"linear_two_vars": True, "linear_system_int": False}
    final = q(db, """SELECT s.completion FROM results r JOIN samples s ON s.sample_id = r.selected_sample_id
                     JOIN problems p ON p.problem_id = r.problem_id WHERE p.source_id = 'linear_two_vars'""")
    assert "omega" in final[0][0]


@pytest.mark.vllm
def test_whole_proof_on_real_lean_and_real_model_stores_and_judges_everything(
        vllm_server: ServerStatus, prefect_api: str, tmp_path: Path) -> None:
    db = tmp_path / "real.duckdb"
    cfg = settings(vllm_server.base_url, str(vllm_server.model), db,
                   **{"prove.strategy": "whole", "prove.limit": 2, "endpoint.max_retries": 2,
                      "sampling.max_tokens": 48, "sampling.temperature": 0.8})
    summary = run_prove("lean-examples", "lean-real", overrides=cfg)
    assert summary["problems"] == 2 and summary["done"] == 2
    n, min_completion, with_call = q(db, f"""SELECT count(*), min(completion_tokens), count(call_id) FROM samples
                                            WHERE model = '{vllm_server.model}'""")[0]
    assert n == 2 and min_completion > 0 and with_call == n
    # a calls row per request, with its tokens
    assert q(db, """SELECT count(*) FROM samples s WHERE NOT EXISTS (SELECT 1 FROM calls c
                    WHERE c.call_id = s.call_id AND c.prompt_tokens > 0 AND c.completion_tokens > 0)""") == [(0,)]
    assert q(db, """SELECT count(*) FROM samples s WHERE NOT EXISTS (SELECT 1 FROM verdicts v
                    WHERE v.sample_id = s.sample_id AND v.verifier = 'formal_audit')""") == [(0,)]
    # whatever counts as proved passed the audit
    assert q(db, """SELECT count(*) FROM results r WHERE r.solved AND NOT EXISTS (SELECT 1 FROM verdicts v
                    WHERE v.sample_id = r.selected_sample_id AND v.verifier = 'formal_audit'
                    AND v.outcome = 'pass')""") == [(0,)]
    assert q(db, "SELECT count(*) FROM results") == [(2,)]


SKETCH = lean("""
theorem exists_witness : ∃ n : Nat, 3 * n + 2 = 17 := by
  refine ⟨5, ?_⟩
  sorry
""")


def test_dsp_on_real_lean_closes_the_sketch_hole_with_omega(prefect_api: str, tmp_path: Path) -> None:
    db = tmp_path / "dsp.duckdb"
    problems = tmp_path / "problems.jsonl"
    line = [ln for ln in (Path(__file__).parents[2] / "proofflow/problems/examples/lean_examples.jsonl")
            .read_text().splitlines() if '"exists_witness"' in ln]
    problems.write_text(line[0] + "\n")
    with RecordedServer(Recording(answers={"theorem exists_witness": SKETCH})) as srv:
        cfg = settings(srv.base_url, "recorded", db, **{"prove.strategy": "dsp", "prove.automation_lean": ["omega"],
                                                          "prove.max_holes": 2})
        summary = run_prove(str(problems), "lean-dsp", overrides=cfg)
    assert summary["done"] == 1 and summary["solved"] == 1
    verdicts = dict(q(db, """SELECT s.stage, list(v.outcome || ':' || coalesce(v.reason, '')) FROM samples s
                             JOIN verdicts v USING (sample_id) WHERE v.verifier = 'formal_audit' GROUP BY s.stage"""))
    assert verdicts["sketch"] == ["fail:hole"] and verdicts["assemble"] == ["pass:"]
    assert q(db, "SELECT outcome FROM verdicts WHERE verifier = 'lean_hole'") == [("pass",)]
    final = q(db, "SELECT s.completion FROM results r JOIN samples s ON s.sample_id = r.selected_sample_id")[0][0]
    assert "sorry" not in final and "omega" in final


@pytest.mark.vllm
def test_dsp_on_real_lean_and_real_model_stores_and_judges_everything(
        vllm_server: ServerStatus, prefect_api: str, tmp_path: Path) -> None:
    db = tmp_path / "dsp-real.duckdb"
    cfg = settings(vllm_server.base_url, str(vllm_server.model), db,
                   **{"prove.strategy": "dsp", "prove.limit": 2, "prove.hole_budget": 1, "prove.check_timeout_s": 60,
                      "endpoint.max_retries": 2, "sampling.max_tokens": 64, "sampling.temperature": 0.8})
    summary = run_prove("lean-examples", "lean-dsp-real", overrides=cfg)
    assert summary["problems"] == 2 and summary["done"] == 2
    stages = {r[0] for r in q(db, "SELECT DISTINCT stage FROM samples")}
    assert {"draft", "sketch"} <= stages, stages
    # every model sample has its tokens and its calls row
    assert q(db, f"""SELECT count(*) FROM samples s WHERE s.model = '{vllm_server.model}'
                     AND (s.completion_tokens = 0 OR NOT EXISTS (SELECT 1 FROM calls c
                          WHERE c.call_id = s.call_id AND c.status = 'ok'))""") == [(0,)]
    # every candidate judged by the audit, every hole attempt by the Lean hole check
    assert q(db, """SELECT count(*) FROM samples s WHERE s.stage IN ('sketch', 'mask', 'assemble')
                    AND NOT EXISTS (SELECT 1 FROM verdicts v WHERE v.sample_id = s.sample_id
                                    AND v.verifier = 'formal_audit')""") == [(0,)]
    assert q(db, """SELECT count(*) FROM samples s WHERE s.stage = 'prove_hole' AND NOT EXISTS
                    (SELECT 1 FROM verdicts v WHERE v.sample_id = s.sample_id
                     AND v.verifier = 'lean_hole')""") == [(0,)]
    assert q(db, """SELECT count(*) FROM samples WHERE parent_id IS NOT NULL
                    AND parent_id NOT IN (SELECT sample_id FROM samples)""") == [(0,)]
    assert q(db, """SELECT count(*) FROM results r WHERE r.solved AND NOT EXISTS (SELECT 1 FROM verdicts v
                    WHERE v.sample_id = r.selected_sample_id AND v.verifier = 'formal_audit'
                    AND v.outcome = 'pass')""") == [(0,)]
    assert q(db, "SELECT count(*) FROM results") == [(2,)]
    # a rerun asks the model and the checker nothing
    rows = q(db, "SELECT (SELECT count(*) FROM samples), (SELECT count(*) FROM verdicts), (SELECT count(*) FROM calls)")
    again = run_prove("lean-examples", "lean-dsp-real", overrides=cfg)
    assert again["checks_run"] == 0
    assert q(db, "SELECT (SELECT count(*) FROM samples), (SELECT count(*) FROM verdicts), "
                 "(SELECT count(*) FROM calls)") == rows
