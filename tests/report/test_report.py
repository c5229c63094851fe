"""Reports, plots, export and the report/export/sql commands on the fixture database of
test_views.py (hand-checked values)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import matplotlib.image as mpimg
import pytest
from storage.test_views import build_fixture_db
from typer.testing import CliRunner

from proofflow.cli import app
from proofflow.report import summary_markdown, summary_table_rows
from proofflow.report.markdown import write_report
from proofflow.report.tables import collect
from proofflow.storage import metrics
from proofflow.storage.db import StorageError, Store
from proofflow.storage.export import export_runs

runner = CliRunner()


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    return build_fixture_db(tmp_path_factory.mktemp("report") / "fixture.duckdb")


def _png_size(path: Path) -> tuple[int, int]:
    img = mpimg.imread(path)
    return img.shape[1], img.shape[0]


def test_markdown_report_with_plots(store: Store, tmp_path: Path) -> None:
    files = write_report(collect(store, ["A", "B", "C"]), tmp_path / "rep")
    md = files.markdown.read_text()
    # The summary table, runs side by side, with hand-checked figures.
    assert "|  | alpha | beta | gamma |" in md
    assert "| pass@1 | 0.200 | 0.250 | 0.000 |" in md
    assert "| cost-of-pass (per first attempt) | $0.05 | n/a | ∞ |" in md
    assert "| 5 | 0.667 | 0.500 | 0.333 |" in md  # k=5: pass@k, coverage, maj@k of alpha
    assert "| alpha | self_verify | answer | 10 | 2 | 2 | 1 | 5 | 0.286 | 0.333 | 0.500 |" in md
    assert "| alpha | self_verify | error | — | 1 | 0.100 |" in md
    assert "## Problems — alpha" in md and "| 2 | p2 | 4 | 2 | ✗ | 6 | 1 | repair r1 |" in md
    assert set(files.plots) == {"pass_at_k", "tokens_of_pass", "cost_of_pass", "tokens_by_stage"}
    for path in files.plots.values():
        assert f"]({path.name})" in md  # linked relatively, so the folder can move
        assert path.stat().st_size > 5_000
        width, height = _png_size(path)
        assert width >= 400 and height >= 150, (path, width, height)


def test_plots_with_nothing_judged_still_render(tmp_path: Path) -> None:
    from proofflow.storage.records import RunRow

    store = Store(tmp_path / "empty.duckdb")
    store.write([RunRow(run_id="E", name="empty", strategy="s", problem_set=None, model=None,
                        config="{}", config_hash="h", code_version="t", status="running")])
    files = write_report(collect(store, ["E"]), tmp_path / "rep")
    assert all(_png_size(p)[0] > 100 for p in files.plots.values())
    assert "| solved (any sample passed) | 0/0 |" in files.markdown.read_text()


def test_summary_for_prefect_artifacts(store: Store) -> None:
    rows = summary_table_rows(store, "A")
    assert all(set(r) == {"metric", "value"} for r in rows)
    values = {r["metric"]: r["value"] for r in rows}
    assert values["solved (any sample passed)"] == "3/4"
    assert values["maj@N"] == "0.333"
    assert values["cost"] == "$0.17"
    assert {r["metric"]: r["value"] for r in summary_table_rows(store, "B")}["cost"] == "n/a"
    md = summary_markdown(store, "A")
    assert md.startswith("# proofflow run `alpha`")
    assert "| pass@N | 0.667 |" in md
    with pytest.raises(StorageError):
        summary_markdown(store, "no-such-run")


def test_export_parquet_reads_back(store: Store, tmp_path: Path) -> None:
    tables = {t.table: t for t in export_runs(store, ["A"], tmp_path / "x", "parquet")}
    assert {t: tables[t].rows for t in tables} == {
        "runs": 1, "problems": 4, "run_problems": 4, "calls": 5, "samples": 16,
        "verdicts": 26, "results": 3}
    # Read the files back with DuckDB (through the store, so storage stays the only importer).
    cols, rows = store.query(
        f"SELECT count(*), count(DISTINCT run_id), sum(cost) FROM read_parquet('{tables['samples'].path}')")
    assert rows[0][:2] == (16, 1) and rows[0][2] == pytest.approx(0.17)
    _, rows = store.query(f"SELECT DISTINCT verifier FROM read_parquet('{tables['verdicts'].path}') ORDER BY 1")
    assert rows == [("answer",), ("self_verify",)]


def test_export_csv(store: Store, tmp_path: Path) -> None:
    tables = {t.table: t for t in export_runs(store, ["B"], tmp_path / "x", "csv")}
    with tables["samples"].path.open() as f:
        samples = list(csv.DictReader(f))
    assert len(samples) == 4 and {s["run_id"] for s in samples} == {"B"}
    assert all(s["cost"] == "" for s in samples)  # unpriced stays empty, not 0
    with pytest.raises(StorageError):
        export_runs(store, ["B"], tmp_path / "y", "xlsx")


def test_cli_sql_table_csv_json(store: Store) -> None:
    q = "SELECT name, solved, problems FROM v_run_summary ORDER BY name"
    res = runner.invoke(app, ["sql", q, "--db", str(store.path)])
    assert res.exit_code == 0, res.output
    assert "alpha" in res.output and "gamma" in res.output and "3 rows" in res.output
    res = runner.invoke(app, ["sql", q, "--db", str(store.path), "--csv"])
    assert res.exit_code == 0, res.output
    assert list(csv.reader(io.StringIO(res.output))) == [
        ["name", "solved", "problems"], ["alpha", "3", "4"], ["beta", "1", "1"], ["gamma", "0", "1"]]
    res = runner.invoke(app, ["sql", "SELECT name, cost_of_pass FROM v_run_summary ORDER BY name",
                              "--db", str(store.path), "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    assert data[1] == {"name": "beta", "cost_of_pass": None}
    assert data[2] == {"name": "gamma", "cost_of_pass": "inf"}


def test_cli_sql_is_read_only(store: Store) -> None:
    res = runner.invoke(app, ["sql", "DELETE FROM runs", "--db", str(store.path)])
    assert res.exit_code == 1
    assert "read-only" in res.output
    _, rows = store.query("SELECT count(*) FROM runs")
    assert rows == [(3,)]


def test_cli_report_and_export(store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROOFFLOW_DB_PATH", str(store.path))  # the default --db
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.chdir(tmp_path)
    res = runner.invoke(app, ["report", "alpha", "beta"])
    assert res.exit_code == 0, res.output
    assert "Run summary" in res.output and "Problems — beta" in res.output
    folder = tmp_path / "reports" / "alpha_vs_beta"
    assert (folder / "report.md").stat().st_size > 1000
    assert (folder / "pass_at_k.png").stat().st_size > 5000
    res = runner.invoke(app, ["export", "alpha", "--format", "csv"])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "exports" / "alpha" / "verdicts.csv").stat().st_size > 0
    res = runner.invoke(app, ["report", "nope"])
    assert res.exit_code == 1 and "unknown run(s): nope" in res.output


def test_cli_creates_views_in_an_older_database(tmp_path: Path) -> None:
    # A file written before views.sql existed: drop the views as if they never were.
    store = build_fixture_db(tmp_path / "old.duckdb")
    with store.connect() as con:
        for (name,) in con.execute(
                "SELECT view_name FROM duckdb_views() WHERE NOT internal").fetchall():
            con.execute(f"DROP VIEW {name}")
        con.execute("DELETE FROM schema_info WHERE key = 'views_version'")
    res = runner.invoke(app, ["sql", "SELECT count(*) AS n FROM v_pass_at_k", "--db",
                              str(store.path), "--csv"])
    assert res.exit_code == 0, res.output
    assert res.output.splitlines() == ["n", "11"]  # k: A 1..5, B 1..4, C 1..2
    assert metrics.views_version(Store(store.path)) == metrics.VIEWS_VERSION
