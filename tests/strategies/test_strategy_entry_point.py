"""A strategy that lives under tests/ (tests/strategies_fixture/twoturn), registered the
way a third party's is: an entry point in the group `proofflow.strategies` of an
installed distribution. Here the distribution is a .dist-info written to a temporary
folder put on sys.path, which importlib.metadata reads like any installed one.

It runs end to end through the real solve flow (real Prefect harness, real DuckDB); the
model is the STAND-IN instant server (it answers "... \\boxed{5}" to every request, the
first example's answer), so what is asserted does not depend on a model's luck.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from proofflow.config import load_settings
from proofflow.flows.solve import run_identity, run_solve
from proofflow.problems import example_path
from proofflow.storage.db import Store
from proofflow.storage.records import SampleRow
from proofflow.strategies import registry
from proofflow.tasks.sampling import sent_messages
from proofflow.testing.instant_server import Behaviour, InstantServer

ENTRY = "twoturn = strategies_fixture.twoturn:TwoTurn"


@pytest.fixture()
def installed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The fixture strategy's distribution, "installed" for this test only."""
    dist = tmp_path / "site" / "pf_twoturn-0.1.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: pf-twoturn\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(f"[proofflow.strategies]\n{ENTRY}\n")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    registry.refresh()
    yield
    monkeypatch.undo()
    registry.refresh()


def test_an_unknown_strategy_is_refused_naming_the_registered_ones() -> None:
    with pytest.raises(ValueError, match=r"strategy[:\s]+Input should be gvr \| pot \| csv"):
        load_settings(None, {"solve.strategy": "twoturn"})


def test_entry_point_strategy_is_found_with_its_section_help_and_identity(installed: None) -> None:
    found = registry.strategy("twoturn", "answer")
    assert type(found).__module__ == "strategies_fixture.twoturn"
    assert "twoturn" in registry.names("answer") and "twoturn" not in registry.names("proof")
    assert "twoturn: a fixture" in registry.help_text("answer")
    settings = load_settings(None, {"solve.strategy": "twoturn", "solve.twoturn.attempts": 3})
    assert found.config(settings).attempts == 3  # type: ignore[attr-defined]
    identity = run_identity(settings, "examples.jsonl")
    assert identity["strategy"] == "twoturn" and identity["attempts"] == 3
    # an unknown key in its section is refused like any other
    with pytest.raises(ValueError, match="attempt"):
        load_settings(None, {"solve.strategy": "twoturn", "solve.twoturn.attempt": 3})


@pytest.mark.prefect
def test_entry_point_strategy_runs_end_to_end_and_its_candidates_reach_pass_at_k(
        installed: None, prefect_api: str, tmp_path: Path) -> None:
    db = tmp_path / "twoturn.duckdb"
    behaviour = Behaviour(model="instant", text="The answer is \\boxed{5}.")
    with InstantServer(behaviour=behaviour) as srv:
        summary = run_solve(str(example_path()), "twoturn-run", overrides={
            "endpoint.model": "instant", "endpoint.base_urls": [srv.base_url], "storage.db_path": str(db),
            "storage.flush_interval_s": 0.05, "solve.strategy": "twoturn", "solve.twoturn.attempts": 3,
            "solve.limit": 2,
        })
    assert summary["problems"] == 2 and summary["done"] == 2 and summary["solved"] == 1
    store = Store(db)
    # its samples: stage `attempt`, 3 per problem (its section's setting), one request each
    assert store.query("SELECT stage, count(*) FROM samples GROUP BY stage")[1] == [("attempt", 6)]
    assert behaviour.requests == 2
    # the conversation the planner built is what the server got, and it is rebuilt from the row
    (params, prompt, completion, seed), *_ = store.query(
        "SELECT params, prompt, completion, seed FROM samples ORDER BY sample_id")[1]
    row = SampleRow(sample_id="x", run_id="r", problem_id="p", stage="attempt", parent_id=None, idx=0, round=0,
                    call_id=None, model=None, endpoint=None, params=params, seed=seed, prompt=prompt,
                    completion=completion, finish_reason=None, prompt_tokens=0, completion_tokens=0,
                    tokens_exact=True, latency_s=0.0, cost=None)
    messages = sent_messages(row)
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user"]
    assert messages[0]["content"] == "You are a careful calculator."
    assert "\n".join(m["content"] for m in messages) in behaviour.prompts
    assert prompt == messages[1]["content"] and prompt.startswith("Problem: What is 2 + 3?")
    # the runs table names the strategy; the views count its `attempt` samples as candidates
    assert store.query("SELECT strategy FROM runs")[1] == [("twoturn",)]
    rows = dict(store.query("""SELECT k, pass_at_k FROM v_pass_at_k p JOIN runs r USING (run_id)
                               WHERE r.name = 'twoturn-run' ORDER BY k""")[1])
    assert rows == {1: 0.5, 2: 0.5, 3: 0.5}  # one problem passes all 3, the other none
    outcomes = store.query("""SELECT generate_samples, generate_passed FROM v_problem_outcomes
                              ORDER BY position""")[1]
    assert outcomes == [(3, 3), (3, 0)]
    stored = json.loads(store.query("SELECT config FROM runs")[1][0][0])
    assert stored["identity"]["attempts"] == 3


def test_builtin_sections_hold_their_keys_and_a_moved_flat_key_names_its_new_place() -> None:
    settings = load_settings(None, {"prove.strategy": "dsp", "prove.whole.repair_candidates": 1,
                                    "prove.dsp.use_informal_proof": False})
    assert registry.strategy("whole", "proof").config(settings).model_dump() == {"repair_candidates": 1}
    assert registry.strategy("dsp", "proof").config(settings).model_dump() == {"use_informal_proof": False}
    with pytest.raises(ValueError, match=r"prove\.whole\.repair_candidates"):
        load_settings(None, {"prove.repair_candidates": 1})
