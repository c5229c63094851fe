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


# --- bounds: memory, time, Ctrl-C (issue 20.5) ---

HUGE = "SELECT length(list(i)::VARCHAR) FROM range(600000000) t(i)"  # the query: ~20 GB unbounded
ENDLESS = "SELECT count(*) FROM range(100000000000) a(i) WHERE i % 7 = 3"  # minutes of CPU


def test_a_query_past_the_memory_cap_ends_with_one_line(store: Store) -> None:
    with pytest.raises(StorageError) as err:
        store.user_query(HUGE, memory_mb=128)
    message = str(err.value)
    assert "more than the 128 MB" in message and "--memory-mb" in message and "\n" not in message


def test_the_cap_cannot_be_raised_from_sql(store: Store) -> None:
    _refused(store, "SET memory_limit = '64GB'")
    _refused(store, "SET max_temp_directory_size = '100GB'")


def test_a_query_past_its_time_limit_is_interrupted(store: Store) -> None:
    import time

    from proofflow.storage.db import QueryTimeoutError

    started = time.monotonic()
    with pytest.raises(QueryTimeoutError, match=r"stopped after 1 s \(storage.sql_timeout_s, --timeout\)"):
        store.user_query(ENDLESS, timeout_s=1.0)
    assert time.monotonic() - started < 4.0
    # the connection it interrupted is gone: the next query runs normally
    assert store.user_query("SELECT count(*) FROM runs", timeout_s=1.0)[1] == [(3,)]


def _cli(*args: str) -> list[str]:
    import sys

    return [sys.executable, "-c", "from proofflow.cli import app; app()", "sql", *args]


def test_cli_memory_cap_bounds_the_process(store: Store) -> None:
    """The issue's query through `proofflow sql` with a 256 MB cap: one line, exit 1, and the
    process's peak resident memory stays far below what the query would take unbounded."""
    import resource
    import subprocess

    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    done = subprocess.run(_cli("--db", str(store.path), "--memory-mb", "256", HUGE),
                          capture_output=True, text=True, timeout=120)
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # KiB on Linux
    assert done.returncode == 1, done.stderr
    lines = [ln for ln in done.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "more than the 256 MB" in lines[0], done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    # ru_maxrss of children is the largest child so far: this one, unless an earlier child was larger
    assert peak_mb < 1500 or before / 1024 >= peak_mb, peak_mb


def test_cli_timeout_flag_ends_the_query_with_one_line(store: Store) -> None:
    import subprocess
    import time

    started = time.monotonic()
    done = subprocess.run(_cli("--db", str(store.path), "--timeout", "1", ENDLESS),
                          capture_output=True, text=True, timeout=120)
    took = time.monotonic() - started
    assert done.returncode == 1
    lines = [ln for ln in done.stderr.splitlines() if ln.strip()]
    assert lines == ["error: the query was stopped after 1 s (storage.sql_timeout_s, --timeout)"], done.stderr
    assert took < 60  # the query alone would run for minutes; startup of the CLI is the rest


def test_cli_ctrl_c_prints_one_line_and_exits_130(store: Store) -> None:
    import os
    import signal
    import subprocess
    import time

    proc = subprocess.Popen(_cli("--db", str(store.path), "--timeout", "300", ENDLESS),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            # a test runner started in the background may ignore SIGINT; a terminal does not
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        # wait until the query runs: the process has the database file open
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                fds = [os.readlink(f"/proc/{proc.pid}/fd/{fd}") for fd in os.listdir(f"/proc/{proc.pid}/fd")]
            except OSError:
                fds = []
            if str(store.path) in fds:
                break
            time.sleep(0.05)
        else:
            raise AssertionError("proofflow sql never opened the database")
        time.sleep(1.5)  # past the views check, into the query
        proc.send_signal(signal.SIGINT)
        out, errs = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, (proc.returncode, errs)
    assert "Traceback" not in errs + out
    lines = [ln for ln in errs.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("interrupted"), errs
