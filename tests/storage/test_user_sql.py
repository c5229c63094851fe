"""`proofflow sql` runs a user's SQL on a sandboxed connection: the database's own tables
and views only, no file read or written outside it, no extension, no setting changed.

Each statement below worked before the sandbox (issue 12.4: a COPY overwrote another
DuckDB file with 7 bytes); the tests check that it is refused AND that nothing happened
on disk.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from storage.test_views import build_fixture_db

from proofflow.storage import metrics
from proofflow.storage.db import StorageError, Store


@pytest.fixture()
def store(tmp_path: Path) -> Store:
    return build_fixture_db(tmp_path / "fixture.duckdb")


def _refused(store: Store, sql: str, sandbox: bool = True) -> str:
    with pytest.raises(StorageError) as err:
        metrics.sql_query(store, sql)
    if sandbox:  # refused by the sandbox, not by some incidental error
        assert "proofflow sql reads this database's tables and views only" in str(err.value)
    return str(err.value)


def test_views_and_tables_still_work(store: Store) -> None:
    cols, rows = metrics.sql_query(store, "SELECT name, problems FROM v_run_summary ORDER BY name")
    assert cols == ["name", "problems"] and rows[0] == ("alpha", 4)
    _, rows = metrics.sql_query(store, "SELECT count(*) FROM samples")
    assert rows[0][0] > 0


def test_copy_to_a_file_is_refused(store: Store, tmp_path: Path) -> None:
    victim = tmp_path / "other.duckdb"
    victim.write_bytes(b"x" * 4096)
    message = _refused(store, f"COPY (SELECT 1) TO '{victim}' (FORMAT csv)")
    assert "export" in message  # points to the one command that writes files
    assert victim.read_bytes() == b"x" * 4096
    _refused(store, f"COPY runs TO '{tmp_path / 'runs.csv'}'")
    assert not (tmp_path / "runs.csv").exists()


def test_export_database_is_refused(store: Store, tmp_path: Path) -> None:
    _refused(store, f"EXPORT DATABASE '{tmp_path / 'dump'}'")
    assert not (tmp_path / "dump").exists() or not any((tmp_path / "dump").iterdir())


@pytest.mark.parametrize("sql", [
    "SELECT * FROM read_csv('/etc/passwd', sep = ':')",
    "SELECT * FROM read_text('/etc/hostname')",
    "SELECT * FROM read_json('{dir}/secret.json')",
    "SELECT * FROM '{dir}/secret.json'",
    "SELECT * FROM glob('/etc/*')",
])
def test_reading_outside_files_is_refused(store: Store, sql: str, tmp_path: Path) -> None:
    (tmp_path / "secret.json").write_text('{"key": "s3cr3t"}\n')
    assert "s3cr3t" not in _refused(store, sql.format(dir=tmp_path))


def test_attach_is_refused(store: Store, tmp_path: Path) -> None:
    other = build_fixture_db(tmp_path / "other.duckdb")
    _refused(store, f"ATTACH '{other.path}' AS other (READ_ONLY)")
    _refused(store, f"ATTACH '{tmp_path / 'new.duckdb'}' AS new")
    assert not (tmp_path / "new.duckdb").exists()


@pytest.mark.parametrize("sql", ["INSTALL httpfs", "LOAD httpfs", "LOAD '/tmp/evil.duckdb_extension'"])
def test_install_and_load_are_refused(store: Store, sql: str) -> None:
    _refused(store, sql)


@pytest.mark.parametrize("sql", [
    "SET enable_external_access = true",
    "RESET enable_external_access",
    "SET allowed_directories = ['/']",
    "SET threads = 1",
    "PRAGMA enable_external_access = true",
])
def test_settings_are_locked(store: Store, sql: str) -> None:
    _refused(store, sql)


def test_writes_to_the_database_are_refused(store: Store) -> None:
    _refused(store, "DELETE FROM runs", sandbox=False)
    _refused(store, "CREATE TABLE x (a INT)", sandbox=False)
    _, rows = metrics.sql_query(store, "SELECT count(*) FROM runs")
    assert rows[0][0] == 3


def test_the_sandbox_does_not_stick_to_other_connections(store: Store, tmp_path: Path) -> None:
    # The next ordinary read and export in the same process still work (DuckDB keeps one
    # instance per file and process: a sandboxed one must not be reused for them).
    _refused(store, "SELECT * FROM read_text('/etc/hostname')")
    from proofflow.storage.export import export_runs

    tables = export_runs(store, ["A"], tmp_path / "out", "csv")
    assert (tmp_path / "out" / "runs.csv").exists() and tables[0].rows == 1
