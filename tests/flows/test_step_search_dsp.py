"""dsp's step search on a hole (`[prove.search] dsp_step_search`, search/runtime.py
`dsp_step_search`, called from tasks/prove_holes.py) end to end: the real prove flow, the
real Prefect harness, a real DuckDB file, the REAL wasm Lean (checker program and
proof-state program).

Model answers come from a RECORDED TACTIC POLICY, a stand-in for the model named as such:
proofflow/testing/recorded_server.py answering the sketch request with a fixed one-hole
sketch, each proof-state prompt with fixed tactics (one per choice) and the hole-proof
prompt with a fixed tactic block. The 135M model would write such text only by luck.

DSP+'s order is automation → step search → hole-proof model. Automation is set to `rfl`
alone, which cannot close the hole's goal `x = 3 ∧ y = 2`:
- on: the step search closes it (`constructor`, `omega`, `omega`) and the hole-proof
  model is never asked;
- off (the default): no proof-state program starts, and the hole goes to the model.

Wasm Lean processes: on = checker + proof-state program, off = checker (30-120 s a start here).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from proofflow.flows.prove import run_prove
from proofflow.storage.db import Store
from proofflow.testing.recorded_server import RecordedServer, Recording

pytestmark = [pytest.mark.lean, pytest.mark.prefect, pytest.mark.slow, pytest.mark.timeout(1500)]

EXAMPLES = Path(__file__).parents[2] / "proofflow/problems/examples/lean_examples.jsonl"
STATEMENT = ("theorem linear_system_int (x y : Int) (h₁ : 2 * x + 3 * y = 12) (h₂ : x - y = 1) : "
             "x = 3 ∧ y = 2 := by")
SKETCH = f"Here is the sketch.\n```lean\n{STATEMENT}\n  sorry\n```\n"
HOLE_PROMPT = "Prove this Lean 4 goal."   # the start of the hole-proof prompt (prompts/hole_lean.txt)
HOLE_ANSWER = "```lean\nconstructor <;> omega\n```"
# proof state (a substring of its pretty-printed goals) -> the tactics proposed, choice i the i-th
TACTICS = {
    "⊢ x = 3 ∧ y = 2": ["constructor", "exact h₂"],
    "case left": ["omega", "rfl"],
    "⊢ y = 2": ["omega", "rfl"],
}


@dataclass
class SketchAndTactics(Recording):
    """RECORDED TACTIC POLICY (stand-in for the model): a proof-state prompt ("Current
    proof state:") gets the tactics of the first key found in the state; any other prompt
    is answered from `answers` (the sketch, the hole proof)."""

    tactics: dict[str, list[str]] = field(default_factory=dict)

    def completion(self, prompt: str, seed: int, index: int) -> str:
        if "Current proof state:" in prompt:
            state = prompt.split("Current proof state:", 1)[1]
            for key, options in self.tactics.items():
                if key in state:
                    return options[min(index, len(options) - 1)]
            return "skip"
        return super().completion(prompt, seed, index)


def q(db: Path, sql: str) -> list[tuple[Any, ...]]:
    return Store(db).query(sql)[1]


def one_problem(tmp_path: Path) -> Path:
    problems = tmp_path / "problems.jsonl"
    problems.write_text(next(ln for ln in EXAMPLES.read_text().splitlines() if '"linear_system_int"' in ln) + "\n")
    return problems


def settings(url: str, db: Path, **extra: object) -> dict[str, object]:
    base: dict[str, object] = {
        "endpoint.model": "recorded", "endpoint.base_urls": [url], "endpoint.max_retries": 0,
        "storage.db_path": str(db), "storage.flush_interval_s": 0.05,
        "prove.backend": "lean", "prove.lean_checker": "program", "prove.check_timeout_s": 240,
        "prove.strategy": "dsp", "prove.samples": 1, "prove.workers": 1, "prove.problems_in_flight": 1,
        "prove.repair_rounds": 0, "prove.repair_depth": 1, "prove.hole_budget": 1, "prove.max_holes": 2,
        "prove.automation_lean": ["rfl"], "prove.search.k": 2, "sampling.max_tokens": 64,
    }
    base.update(extra)
    return base


def hole_attempts(db: Path) -> list[tuple[Any, ...]]:
    return q(db, """SELECT s.model, v.outcome FROM samples s JOIN verdicts v USING (sample_id)
                    WHERE s.stage = 'prove_hole' AND v.verifier = 'lean_hole' ORDER BY s.idx""")


def audited(db: Path) -> dict[str, list[str]]:
    return dict(q(db, """SELECT s.stage, list(v.outcome || ':' || coalesce(v.reason, '') ORDER BY s.sample_id)
                         FROM samples s JOIN verdicts v USING (sample_id)
                         WHERE v.verifier = 'formal_audit' GROUP BY s.stage"""))


def selected_proof(db: Path) -> str:
    rows = q(db, """SELECT s.completion FROM results r JOIN samples s ON s.sample_id = r.selected_sample_id
                    JOIN verdicts v ON v.sample_id = s.sample_id AND v.verifier = 'formal_audit'
                    WHERE r.solved AND v.outcome = 'pass'""")
    assert len(rows) == 1, rows
    return str(rows[0][0])


def test_dsp_step_search_closes_the_hole_automation_left_before_the_hole_model(
        prefect_api: str, tmp_path: Path) -> None:
    db = tmp_path / "on.duckdb"
    policy = SketchAndTactics(answers={HOLE_PROMPT: HOLE_ANSWER, "theorem linear_system_int": SKETCH},
                              tactics=dict(TACTICS))
    with RecordedServer(policy) as srv:
        summary = run_prove(str(one_problem(tmp_path)), "dsp-step-search", overrides=settings(
            srv.base_url, db, **{"prove.search.dsp_step_search": True, "prove.search.dsp_max_expansions": 4}))
        prompts = list(srv.recording.prompts)
    assert summary["done"] == 1 and summary["solved"] == 1
    # the sketch left its hole; the assembled proof passed the whole-file checker and the audit
    assert audited(db)["sketch"] == ["fail:hole"] and audited(db)["assemble"] == ["pass:"]
    assert q(db, "SELECT outcome, reason FROM verdicts WHERE verifier = 'lean' AND sample_id IN "
                 "(SELECT sample_id FROM samples WHERE stage = 'assemble')") == [("pass", "complete")]
    # DSP+'s order: automation (rfl) failed, the step search's tactic path closed the hole,
    # so the hole-proof model (hole_budget 1) was never asked
    assert hole_attempts(db) == [("automation", "fail"), ("search", "pass")]
    assert not any(HOLE_PROMPT in p for p in prompts)
    assert q(db, "SELECT completion FROM samples WHERE stage = 'prove_hole' AND model = 'search'") == [
        ("constructor\nomega\nomega",)]
    # the search tree: one hole's root, three expansions, the closing path marked proved
    assert q(db, "SELECT count(*) FROM search_nodes WHERE status = 'root'") == [(1,)]
    assert q(db, "SELECT tactic, depth FROM search_nodes WHERE status = 'proved'") == [("omega", 3)]
    expansions = q(db, "SELECT count(DISTINCT parent_id), count(*) FROM samples WHERE stage = 'search'")[0]
    assert expansions == (3, 6) and sum("Current proof state:" in p for p in prompts) == 3
    final = selected_proof(db)
    assert "sorry" not in final and "constructor" in final and final.count("omega") == 2


def test_dsp_default_leaves_the_hole_to_the_hole_proof_model(prefect_api: str, tmp_path: Path) -> None:
    db = tmp_path / "off.duckdb"
    policy = SketchAndTactics(answers={HOLE_PROMPT: HOLE_ANSWER, "theorem linear_system_int": SKETCH},
                              tactics=dict(TACTICS))
    with RecordedServer(policy) as srv:
        summary = run_prove(str(one_problem(tmp_path)), "dsp-default", overrides=settings(srv.base_url, db))
        prompts = list(srv.recording.prompts)
    assert summary["done"] == 1 and summary["solved"] == 1
    # off: no proof state was asked for, no tree stored; automation, then the model closed the hole
    assert not any("Current proof state:" in p for p in prompts)
    assert sum(HOLE_PROMPT in p for p in prompts) == 1
    assert q(db, "SELECT count(*) FROM search_nodes") == [(0,)]
    assert q(db, "SELECT count(*) FROM samples WHERE stage = 'search'") == [(0,)]
    assert hole_attempts(db) == [("automation", "fail"), ("recorded", "pass")]
    assert audited(db)["assemble"] == ["pass:"]
    assert "constructor <;> omega" in selected_proof(db)
