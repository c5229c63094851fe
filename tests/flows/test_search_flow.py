"""The `search` strategy end to end: the real prove flow, real Prefect harness, real DuckDB,
the REAL wasm Lean (proof-state program and checker).

Model answers come from a RECORDED TACTIC POLICY (a stand-in for the model, named as such:
proofflow/testing/recorded_server.py answering each proof state with the tactics written
here, one per choice) where a specific tactic sequence is needed.

Every flow run starts a proof-state process and a checker process (wasm: 30-120 s each here).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from proofflow.flows.prove import run_prove
from proofflow.storage.db import Store
from proofflow.testing.recorded_server import RecordedServer, Recording

# Each flow run starts a checker and a proof-state process (2-4 wasm starts per test).
pytestmark = [pytest.mark.lean, pytest.mark.prefect, pytest.mark.slow, pytest.mark.timeout(2400)]



def q(db: Path, sql: str) -> list[tuple[Any, ...]]:
    return Store(db).query(sql)[1]


@dataclass
class TacticPolicy(Recording):
    """RECORDED TACTIC POLICY: the first key found in the proof state gets its tactics,
    choice i the i-th (the last one repeated)."""

    tactics: dict[str, list[str]] = field(default_factory=dict)
    fallback: list[str] = field(default_factory=lambda: ["skip"])

    def completion(self, prompt: str, seed: int, index: int) -> str:
        state = prompt.split("Current proof state:", 1)[-1]
        for key, options in self.tactics.items():
            if key in state:
                return options[min(index, len(options) - 1)]
        return self.fallback[min(index, len(self.fallback) - 1)]


def settings(url: str, model: str, db: Path, **extra: object) -> dict[str, object]:
    base: dict[str, object] = {
        "endpoint.model": model, "endpoint.base_urls": [url], "endpoint.max_retries": 0,
        "storage.db_path": str(db), "storage.flush_interval_s": 0.05,
        "prove.backend": "lean", "prove.lean_checker": "program", "prove.check_timeout_s": 240,
        "prove.samples": 1, "prove.workers": 1, "prove.problems_in_flight": 1,
        "prove.repair_rounds": 0, "prove.repair_depth": 0, "prove.hole_budget": 0,
        "prove.strategy": "search", "prove.search.k": 2, "prove.search.max_expansions": 6,
        "prove.search.expansions_per_task": 2, "sampling.max_tokens": 32,
    }
    base.update(extra)
    return base


POLICY = {
    "⊢ x = 6": ["exact h₁", "omega"],                      # linear_two_vars: the first fails, omega proves it
    "⊢ x = 3 ∧ y = 2": ["constructor", "exact h₂"],       # linear_system_int: split, then omega twice
    "case left": ["omega", "rfl"],
    "⊢ y = 2": ["omega", "rfl"],
}


def test_search_strategy_proves_from_the_recorded_policy_and_a_rerun_asks_nothing(
        prefect_api: str, tmp_path: Path) -> None:
    db = tmp_path / "search.duckdb"
    with RecordedServer(TacticPolicy(tactics=dict(POLICY))) as srv:
        cfg = settings(srv.base_url, "recorded", db, **{"prove.limit": 2})
        summary = run_prove("lean-examples", "lean-search", overrides=cfg)
        asked = srv.recording.requests
        assert summary["problems"] == 2 and summary["done"] == 2 and summary["solved"] == 2
        # the assembled proofs passed the audit, and they are what the results selected
        proofs = dict(q(db, """SELECT p.source_id, s.completion FROM results r JOIN samples s
                               ON s.sample_id = r.selected_sample_id JOIN problems p ON p.problem_id = r.problem_id"""))
        assert proofs["linear_two_vars"].rstrip().endswith("omega")
        assert "constructor" in proofs["linear_system_int"]
        assert q(db, """SELECT count(*) FROM samples s JOIN verdicts v USING (sample_id) WHERE s.stage = 'search_proof'
                        AND v.verifier = 'formal_audit' AND v.outcome = 'pass'""") == [(2,)]
        # the tree: every expansion's samples have the expanded node as parent
        assert q(db, """SELECT count(*) FROM samples s WHERE s.stage = 'search' AND NOT EXISTS
                        (SELECT 1 FROM search_nodes n WHERE n.node_id = s.parent_id)""") == [(0,)]
        tried = q(db, """SELECT tactic, status FROM v_search_tactics t JOIN problems p USING (problem_id)
                         WHERE p.source_id = 'linear_two_vars' ORDER BY depth, tactic""")
        assert ("exact h₁", "error") in tried and ("omega", "proved") in tried
        assert q(db, "SELECT count(*) FROM samples WHERE stage = 'search'")[0][0] == 2 * asked
        # Run again: everything is stored, nothing is asked.
        again = run_prove("lean-examples", "lean-search", overrides=cfg)
        assert again["solved"] == 2 and srv.recording.requests == asked
