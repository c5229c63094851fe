"""Each table's primary key is stated once in Python (`Row.primary_key`, records.py), and
the DDL (schema.sql) agrees with it; every table's row type is in WRITE_ORDER, so nothing
registers a table by an import side effect (issue #16.5)."""

from __future__ import annotations

from pathlib import Path

from proofflow.storage.db import Store
from proofflow.storage.journal import ROW_TYPES
from proofflow.storage.records import WRITE_ORDER, CheckCacheRow


def test_schema_primary_keys_are_the_row_types(tmp_path: Path) -> None:
    store = Store(tmp_path / "keys.duckdb")
    with store.connect() as con:
        rows = con.execute(
            "SELECT table_name, constraint_column_names FROM duckdb_constraints() "
            "WHERE constraint_type = 'PRIMARY KEY'").fetchall()
    in_schema = {table: tuple(cols) for table, cols in rows}
    for row_type in WRITE_ORDER:
        assert row_type.primary_key, f"{row_type.__name__} states no primary key"
        assert set(row_type.primary_key) <= set(row_type.columns()), row_type.__name__
        assert in_schema[row_type.table] == row_type.primary_key, row_type.table


def test_journal_knows_every_table_without_importing_its_module() -> None:
    assert ROW_TYPES["check_cache"] is CheckCacheRow
    assert set(ROW_TYPES) == {t.table for t in WRITE_ORDER}
