"""Tokens-of-pass (issue 11.7): the views against values computed by hand on the fixture
database of tests/storage/test_views.py, and the report's plots when nothing is priced.

Fixture (see fixture_rows there): every sample has 100 prompt + 50 completion tokens.
  run A ("alpha", priced): 15 generate samples, 3 pass; calls: 3 generate calls of
      500 + 250 tokens, a failed call with no tokens, a repair call of 150 + 80;
      results: 1 correct of 3.
  run B ("beta", unpriced, no call rows): 4 generate samples, 1 passes; 0 correct of 1.
  run C ("gamma", priced): 2 generate samples, none pass; 0 correct of 1.
"""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import pytest
from storage.test_views import build_fixture_db, fixture_rows

from proofflow.report.markdown import write_report
from proofflow.report.tables import collect
from proofflow.storage import metrics
from proofflow.storage.db import Store
from proofflow.storage.records import Row, SampleRow


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    return build_fixture_db(tmp_path_factory.mktemp("tokens") / "fixture.duckdb")


def test_tokens_of_pass_by_hand(store: Store) -> None:
    by_run = {r["run_id"]: r for r in metrics.tokens_of_pass(store, ["A", "B", "C"])}
    a, b, c = by_run["A"], by_run["B"], by_run["C"]
    # A: 150 tokens per first attempt, 3 of 15 pass: 150 / (3/15) = 750.
    assert (a["attempts"], a["passed"]) == (15, 3)
    assert a["attempt_tokens"] == pytest.approx(150)
    assert a["tokens_of_pass"] == pytest.approx(750)
    # A's whole pipeline from its calls: 3 x 750 + 0 (failed) + 230 (repair) = 2480 tokens
    # for 1 correct problem.
    assert a["total_tokens"] == 2480 and a["correct"] == 1
    assert a["tokens_per_correct"] == pytest.approx(2480)
    # B has no prices but tokens-of-pass is known: 150 / (1/4) = 600; no correct answer: ∞.
    assert b["tokens_of_pass"] == pytest.approx(600)
    assert b["total_tokens"] == 600 and math.isinf(b["tokens_per_correct"])
    # C: nothing passed: ∞ both ways.
    assert math.isinf(c["tokens_of_pass"]) and math.isinf(c["tokens_per_correct"])

    by_model = {(r["run_id"], r["model"]): r for r in metrics.tokens_of_pass_by_model(store, ["A", "B"])}
    assert by_model[("A", "m1")]["tokens_of_pass"] == pytest.approx(750)
    assert by_model[("B", "m2")]["tokens_of_pass"] == pytest.approx(600)
    assert by_model[("B", "m2")]["success_rate"] == pytest.approx(0.25)


def test_run_summary_shows_tokens_of_pass(store: Store) -> None:
    rows = {r["name"]: r for r in metrics.run_summary_rows(store, ["A", "B"])}
    assert rows["alpha"]["tokens_of_pass"] == pytest.approx(750)
    assert rows["beta"]["tokens_of_pass"] == pytest.approx(600)
    assert rows["alpha"]["tokens_per_correct"] == pytest.approx(2480)


def test_report_of_unpriced_runs_plots_tokens_of_pass_not_an_empty_cost_chart(tmp_path: Path) -> None:
    # Run B alone has no price at all.
    store = build_fixture_db(tmp_path / "fixture.duckdb")
    out = tmp_path / "rep"
    out.mkdir()
    (out / "cost_of_pass.png").write_bytes(b"left over from a priced report")
    files = write_report(collect(store, ["B"]), out)
    assert set(files.plots) == {"pass_at_k", "tokens_of_pass", "tokens_by_stage"}
    assert not (out / "cost_of_pass.png").exists()
    md = files.markdown.read_text()
    assert "### Tokens-of-pass" in md and "Cost-of-pass" not in md.split("## Plots")[1].split("## ")[0]
    assert "| tokens-of-pass (per first attempt) | 600 |" in md
    assert "| beta | m2 | 4 | 0.250 | n/a | n/a | 150 | 600 |" in md


def test_priced_report_keeps_cost_of_pass_beside_tokens_of_pass(tmp_path: Path) -> None:
    store = build_fixture_db(tmp_path / "fixture.duckdb")
    files = write_report(collect(store, ["A", "B", "C"]), tmp_path / "rep")
    assert set(files.plots) == {"pass_at_k", "tokens_of_pass", "cost_of_pass", "tokens_by_stage"}
    md = files.markdown.read_text()
    assert "| tokens-of-pass (per first attempt) | 750 | 600 | ∞ |" in md
    assert "| tokens per correct problem | 2,480 | ∞ | ∞ |" in md


def test_unknown_token_counts_add_nothing(tmp_path: Path) -> None:
    """A sample whose server reported no token counts is an attempt with 0 tokens."""
    rows: list[Row] = fixture_rows()
    rows = [replace(r, prompt_tokens=None, completion_tokens=None)
            if isinstance(r, SampleRow) and r.run_id == "C" and r.idx == 0 else r for r in rows]
    store = Store(tmp_path / "f.duckdb")
    store.write(rows)
    [c] = metrics.tokens_of_pass_by_model(store, ["C"])
    assert c["attempt_tokens"] == pytest.approx(75) and math.isinf(c["tokens_of_pass"])
