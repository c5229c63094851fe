"""The only module that talks to DuckDB.

Locking model (why connections are short-lived): DuckDB lets one process at a time hold
a database file open for writing, and a read-only open from another process fails while
it is held. So a run never keeps the file open: it reads its state once at start, then
a background writer opens the file, appends a batch in one transaction and closes it
again (about every half second). Between flushes anyone can open the file, and both
sides retry for a bounded time when they meet the other's lock.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
import time
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import duckdb

from proofflow.storage import in_flight
from proofflow.storage.bulk import clean_stale_batches, insert_rows
from proofflow.storage.bulk import select_rows as _select
from proofflow.storage.errors import DatabaseCorruptError, DatabaseLockedError, StorageError
from proofflow.storage.journal import Journal
from proofflow.storage.journal import replay as replay_journals
from proofflow.storage.lease import current_holder
from proofflow.storage.lockinfo import lock_message
from proofflow.storage.paths import work_dir
from proofflow.storage.records import (
    WRITE_ORDER,
    EpisodeRow,
    ResultRow,
    Row,
    RunProblemLineRow,
    RunRow,
    SampleRow,
    ToolRunRow,
    VerdictRow,
    utcnow,
)

__all__ = ["BatchWriter", "DatabaseLockedError", "ProblemState", "RunState", "StorageError", "Store"]

log = logging.getLogger(__name__)

SCHEMA_VERSION = "1"


def _is_lock_error(exc: BaseException) -> bool:
    if isinstance(exc, duckdb.IOException) and "lock" in str(exc).lower():
        return True  # another process holds the file
    # Another connection in this process has the file open in the other mode (a flush
    # while we read, or the reverse); it is short-lived, so wait like for a lock.
    return isinstance(exc, duckdb.ConnectionException) and "different configuration" in str(exc)


_DAMAGE_MARKERS = ("Could not read enough bytes", "not a valid DuckDB", "Corrupt", "checksum")
# A DuckDB file is 3 header blocks of 4 KiB, then blocks of `block_size`, each block in
# use at its own offset: a file shorter than its used blocks was cut short (a copy
# interrupted, a full disk).
_HEADER_BYTES = 3 * 4096


def _damaged(exc: BaseException) -> str:
    text = str(exc)
    if any(k in text for k in _DAMAGE_MARKERS):
        return (" — the file looks truncated or damaged (a copy cut short, a full disk). Point --db "
                "at another file, or restore this one from a copy.")
    return ""


def _corrupt(path: Path, detail: str) -> str:
    return (f"database {path} is corrupt ({detail}); it was not modified. Restore it from a backup, "
            "or start a new database (--db NEW.duckdb or PROOFFLOW_DB_PATH=NEW.duckdb); "
            "resuming on this file is not possible.")


# The connection a user's own SQL runs on (Store.user_query): no file outside the
# database, no extension loading, and settings locked so SQL cannot undo any of it.
USER_SQL_CONFIG: dict[str, Any] = {
    "enable_external_access": False,
    "autoinstall_known_extensions": False,
    "autoload_known_extensions": False,
    "allow_community_extensions": False,
    "allow_unsigned_extensions": False,
    "lock_configuration": True,
}


class Store:
    """A DuckDB file holding runs, problems, samples, verdicts and results."""

    def __init__(self, path: str | Path, lock_timeout_s: float = 30.0):
        self.path = Path(path)
        self.work_dir = work_dir(self.path)  # run locks and flush batches (storage/paths.py)
        self.lock_timeout_s = lock_timeout_s
        self._schema_ready = False

    # -- connections -------------------------------------------------------------

    @contextlib.contextmanager
    def connect(
        self, read_only: bool = False, config: Mapping[str, Any] | None = None
    ) -> Iterator[duckdb.DuckDBPyConnection]:
        """Open the file, retrying while another process holds its lock. The first
        write of this Store checks the file first, read-only (check_intact)."""
        if read_only and not self.path.exists():
            raise StorageError(f"database {self.path} does not exist")
        if not read_only and not self._schema_ready:
            self.check_intact()
        deadline = time.monotonic() + self.lock_timeout_s
        delay = 0.01
        start = time.monotonic()
        while True:
            try:
                con = duckdb.connect(str(self.path), read_only=read_only, config=dict(config or {}))
                break
            except duckdb.Error as exc:
                if not _is_lock_error(exc):
                    raise StorageError(f"cannot open database {self.path}: {exc}{_damaged(exc)}") from exc
                if time.monotonic() >= deadline:
                    raise DatabaseLockedError(
                        lock_message(self.path, exc, time.monotonic() - start)
                    ) from exc
                time.sleep(delay)
                delay = min(delay * 2, 0.25)
        try:
            if not read_only and not self._schema_ready:
                self._ensure_schema(con)
                clean_stale_batches(self.work_dir)  # left by a run killed mid-flush
                replay_journals(con, self.work_dir)  # rows a killed run had not written yet
            yield con
        except (duckdb.IOException, duckdb.InternalException, duckdb.FatalException) as exc:
            # A truncated or damaged file opens, then fails on the first read of a
            # missing block: say which file, not a DuckDB traceback.
            raise StorageError(f"database {self.path}: {exc}{_damaged(exc)}") from exc
        finally:
            con.close()

    def check_intact(self) -> None:
        """DatabaseCorruptError for an existing file that fails its checks, found with a
        read-only open: opening a damaged file for writing modified it (DuckDB wrote its
        schema and a checkpoint into it) before the damage was found (issue 20.11)."""
        if not self.path.is_file() or self.path.stat().st_size == 0:
            return  # a new database (DuckDB creates a missing or empty file)
        try:
            with self.connect(read_only=True) as con:
                row = con.execute("SELECT block_size, used_blocks FROM pragma_database_size()").fetchone()
                con.execute("SELECT count(*) FROM information_schema.tables").fetchone()
        except DatabaseLockedError:
            raise
        except StorageError as exc:
            if any(k in str(exc) for k in _DAMAGE_MARKERS):
                raise DatabaseCorruptError(_corrupt(self.path, str(exc.__cause__ or exc))) from exc
            raise
        size = self.path.stat().st_size
        expected = _HEADER_BYTES + int(row[0]) * int(row[1]) if row else 0
        # Every block in use is stored at its own offset, so a file shorter than the used
        # blocks was cut short. Not total_blocks: free blocks past the file's last block
        # need not be on disk (a healthy file after tables shrank; every real run's file).
        if size < expected:
            raise DatabaseCorruptError(_corrupt(
                self.path, f"the file is {size:,} bytes, its used blocks need {expected:,}: it was cut short"))

    def _ensure_schema(self, con: duckdb.DuckDBPyConnection) -> None:
        sql = resources.files("proofflow.storage").joinpath("schema.sql").read_text()
        con.execute(sql)
        views = resources.files("proofflow.storage").joinpath("views.sql")
        if views.is_file():
            con.execute(views.read_text())
        con.execute(
            "INSERT OR REPLACE INTO schema_info VALUES ('schema_version', ?)", [SCHEMA_VERSION]
        )
        self._schema_ready = True

    def init(self) -> None:
        with self.connect():
            pass

    # -- writes ------------------------------------------------------------------

    def write(self, rows: Sequence[Row]) -> int:
        """Insert rows (any mix of tables) in one transaction; existing keys are kept.

        Rows go in as one JSONL batch file per table that DuckDB reads natively
        (storage/bulk.py): far faster than executemany for thousands of rows.
        """
        by_type: dict[type[Row], list[Row]] = defaultdict(list)
        for row in rows:
            by_type[type(row)].append(row)
        if not by_type:
            return 0
        with self.connect() as con:
            con.execute("BEGIN TRANSACTION")
            try:
                for row_type in WRITE_ORDER:
                    if row_type in by_type:
                        insert_rows(con, row_type, by_type.pop(row_type), self.work_dir)
                for row_type, batch in by_type.items():  # types outside WRITE_ORDER
                    insert_rows(con, row_type, batch, self.work_dir)
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise
        return len(rows)

    def start_run(self, run: RunRow) -> RunRow:
        """Create the run, or return the stored one if this name exists (resume)."""
        with self.connect() as con:
            existing = con.execute("SELECT * FROM runs WHERE name = ?", [run.name]).fetchone()
            if existing:
                cols = [d[0] for d in con.description]
                stored = RunRow(**dict(zip(cols, existing)))
                con.execute(
                    "UPDATE runs SET status = 'running', finished_at = NULL WHERE run_id = ?",
                    [stored.run_id],
                )
                stored.status = "running"
                return stored
            insert_rows(con, RunRow, [run], self.work_dir)
            return run

    def finish_run(self, run_id: str, status: str) -> None:
        with self.connect() as con:
            con.execute(
                "UPDATE runs SET status = ?, finished_at = ? WHERE run_id = ?",
                [status, utcnow(), run_id],
            )

    def set_problem_file(self, run_id: str, lines: Sequence[RunProblemLineRow]) -> None:
        """Record (or, when a run is extended, replace) the problem file of a run."""
        with self.connect() as con:
            con.execute("BEGIN TRANSACTION")
            try:
                con.execute("DELETE FROM run_problem_lines WHERE run_id = ?", [run_id])
                insert_rows(con, RunProblemLineRow, list(lines), self.work_dir)
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise

    # -- reads -------------------------------------------------------------------

    def load_run_state(self, run_id: str) -> RunState:
        """Everything a run has stored, grouped by problem: the basis of resume."""
        state = RunState(run_id=run_id)
        if not self.path.exists():
            return state
        with self.connect(read_only=True) as con:
            for row in _select(con, SampleRow, "WHERE run_id = ?", [run_id]):
                state.problem(row.problem_id).samples[row.sample_id] = row
            for row in _select(con, VerdictRow, "WHERE run_id = ?", [run_id]):
                state.problem(row.problem_id).verdicts[(row.sample_id, row.verifier)] = row
            for row in _select(con, ResultRow, "WHERE run_id = ?", [run_id]):
                state.problem(row.problem_id).result = row
            for tool in _select(con, ToolRunRow, "WHERE run_id = ?", [run_id]):
                state.problem(tool.problem_id).tool_runs[tool.tool_run_id] = tool
            for episode in _select(con, EpisodeRow, "WHERE run_id = ?", [run_id]):
                state.problem(episode.problem_id).episodes[episode.episode] = episode
        return state

    def problem_file(self, run_id: str) -> list[RunProblemLineRow]:
        """The problem file the run was started with (empty for a new run, or one stored
        before proofflow recorded it)."""
        if not self.path.exists():
            return []
        with self.connect(read_only=True) as con:
            try:
                return _select(con, RunProblemLineRow, "WHERE run_id = ? ORDER BY line", [run_id])
            except duckdb.CatalogException:  # a file last written by an older proofflow
                return []

    def get_run(self, name_or_id: str) -> RunRow | None:
        with self.connect(read_only=True) as con:
            rows = _select(con, RunRow, "WHERE name = ? OR run_id = ?", [name_or_id, name_or_id])
        return self._live_status(rows[0]) if rows else None

    def list_runs(self) -> list[RunRow]:
        with self.connect(read_only=True) as con:
            return [self._live_status(r) for r in _select(con, RunRow, "ORDER BY started_at")]

    def _live_status(self, run: RunRow) -> RunRow:
        """A stored `running` whose process no longer holds the run's lease (killed, or
        the machine went down) is shown as `interrupted`: rerunning resumes it."""
        if run.status == "running" and current_holder(self.path, run.run_id) is None:
            run.status = "interrupted"
        return run

    def query(
        self, sql: str, params: Sequence[Any] | Mapping[str, Any] = ()
    ) -> tuple[list[str], list[tuple[Any, ...]]]:
        """Run SQL read-only (positional `?` or named `$name` parameters);
        returns (column names, rows)."""
        with self.connect(read_only=True) as con:
            cur = con.execute(sql, dict(params) if isinstance(params, Mapping) else list(params))
            cols = [d[0] for d in cur.description] if cur.description else []
            return cols, cur.fetchall()

    def user_query(self, sql: str, memory_mb: int = 2048,
                   timeout_s: float | None = 60.0) -> tuple[list[str], list[tuple[Any, ...]]]:
        """Run a user's SQL (`proofflow sql`) on a sandboxed read-only connection.

        Why: a read-only open still lets SQL read and write any file the user can (COPY TO
        overwrote another database, read_csv('/etc/...'), EXPORT DATABASE, ATTACH) and load
        extensions. With external access off and the configuration locked, only this
        file's tables and views are reachable and no statement can turn that back on.
        `proofflow export` stays the one command that writes files.

        Bounded (issue 20.5: one query held ~20 GB for 65 s): DuckDB's memory_limit caps
        its memory at `memory_mb`, with no spilling to disk (a temp file could fill it
        instead); the locked configuration keeps SQL from raising either. DuckDB has no
        statement timeout, so a timer interrupts the connection after `timeout_s`. Each
        ends in one-line StorageError (QueryTimeoutError for the timer).
        """
        config = {**USER_SQL_CONFIG, "memory_limit": f"{memory_mb}MB", "max_temp_directory_size": "0B",
                  "lock_configuration": False}  # locked below, after the progress bar is off
        timer: threading.Timer | None = None
        fired = threading.Event()  # the timer interrupted the query
        ctrl_c = threading.Event()  # SIGINT interrupted it
        restore: Any = None
        try:
            with self.connect(read_only=True, config=config) as con:
                # A session setting (not one connect() takes): DuckDB would draw its bar on stdout.
                con.execute("SET enable_progress_bar = false")
                con.execute("SET lock_configuration = true")
                if timeout_s is not None:
                    def interrupt() -> None:
                        fired.set()
                        con.interrupt()

                    timer = threading.Timer(timeout_s, interrupt)
                    timer.daemon = True
                    timer.start()
                if threading.current_thread() is threading.main_thread():
                    # DuckDB does not always notice a SIGINT on its own (the query ran on):
                    # the handler interrupts the connection and the caller sees KeyboardInterrupt.
                    def on_sigint(signum: int, frame: Any) -> None:
                        ctrl_c.set()
                        con.interrupt()

                    restore = signal.signal(signal.SIGINT, on_sigint)
                cur = con.execute(sql)
                cols = [d[0] for d in cur.description] if cur.description else []
                rows = cur.fetchall()
            if ctrl_c.is_set():
                raise KeyboardInterrupt
            return cols, rows
        except duckdb.OutOfMemoryException as exc:
            raise StorageError(
                f"the query needs more than the {memory_mb} MB proofflow sql may use "
                "(storage.sql_memory_mb, --memory-mb): aggregate in SQL, or select fewer rows"
            ) from exc
        except (duckdb.InterruptException, RuntimeError) as exc:
            if ctrl_c.is_set() or (not fired.is_set() and "Query interrupted" in str(exc)):
                raise KeyboardInterrupt from exc  # Ctrl-C, turned into an error by DuckDB
            if fired.is_set():
                raise QueryTimeoutError(
                    f"the query was stopped after {timeout_s:g} s (storage.sql_timeout_s, --timeout)"
                ) from exc
            raise
        except (duckdb.PermissionException, duckdb.InvalidInputException) as exc:
            text = str(exc)
            if "disabled" in text or "configuration has been locked" in text:
                raise StorageError(
                    f"{text.splitlines()[0]}\nproofflow sql reads this database's tables and "
                    "views only (no other files, extensions or settings); `proofflow export "
                    "RUN` writes a run's rows to files."
                ) from exc
            raise StorageError(text) from exc
        except duckdb.Error as exc:
            raise StorageError(str(exc)) from exc
        finally:
            if timer is not None:
                timer.cancel()
            if restore is not None:
                signal.signal(signal.SIGINT, restore)


class QueryTimeoutError(StorageError):
    """A user's query (`proofflow sql`) ran past its time limit and was interrupted."""


@dataclass
class ProblemState:
    samples: dict[str, SampleRow] = field(default_factory=dict)
    verdicts: dict[tuple[str, str], VerdictRow] = field(default_factory=dict)
    result: ResultRow | None = None
    # Agents: tool runs by id, ended episodes by number (proofflow/agents/).
    tool_runs: dict[str, ToolRunRow] = field(default_factory=dict)
    episodes: dict[int, EpisodeRow] = field(default_factory=dict)


@dataclass
class RunState:
    run_id: str
    problems: dict[str, ProblemState] = field(default_factory=dict)

    def problem(self, problem_id: str) -> ProblemState:
        return self.problems.setdefault(problem_id, ProblemState())

    def done(self, problem_id: str) -> bool:
        p = self.problems.get(problem_id)
        return p is not None and p.result is not None


FLUSH_SHARE = 0.1  # the most of its time a writer spends flushing (BatchWriter._interval)


class BatchWriter:
    """Collects rows from many threads and writes them in batches from one thread.

    Every row is also appended to a journal file as it arrives (storage/journal.py), so
    a killed process loses none of them: the next process that writes to the database
    replays the journal. `flush()` forces a write now; `close()` flushes and stops the
    thread.
    """

    def __init__(self, store: Store, flush_interval_s: float = 0.5, max_rows: int = 5000):
        self.store = store
        self.flush_interval_s = flush_interval_s
        self.max_rows = max_rows
        self._rows: list[Row] = []
        self._journal = Journal(store.work_dir)
        self._carry: list[Path] = []  # journal files of rows requeued by a failed flush
        # Model calls sent and not answered yet (storage/in_flight.py): journaled as
        # `interrupted`, kept out of the database until their final row replaces them.
        self._pending: dict[str, Row] = {}
        self._cond = threading.Condition()
        self._write_lock = threading.Lock()
        self._closed = False
        self._error: BaseException | None = None
        self.rows_written = 0
        self.flushes = 0
        self.last_flush_s = 0.0  # how long the last flush took (it paces the next: _interval)
        self._thread = threading.Thread(target=self._loop, name="proofflow-writer", daemon=True)
        self._thread.start()
        in_flight.register(self.announce)

    def announce(self, row: Row) -> None:
        """A model call about to be sent (status `interrupted`): journaled now, so a SIGKILL
        before its answer still leaves its row; written only if no final row comes."""
        with self._cond:
            self._pending[getattr(row, "call_id", "")] = row  # a CallRow
            self._journal.append([row])

    def put(self, *rows: Row) -> None:
        # A reader holding the file past the lock timeout delays writes but must not
        # fail the run: rows stay queued and later flushes retry. Other errors raise.
        if not isinstance(self._error, DatabaseLockedError):
            self._raise_if_failed()
        with self._cond:
            if self._pending:  # a call's final row settles its pending one
                for row in rows:
                    self._pending.pop(getattr(row, "call_id", None) or "", None)
            self._journal.append(rows)
            self._rows.extend(rows)
            if len(self._rows) >= self.max_rows:
                self._cond.notify()

    def flush(self) -> None:
        self._write(*self._take())
        self._raise_if_failed()

    def _take(self) -> tuple[list[Row], list[Path]]:
        """The queued rows and the journal files that hold them (closed: the next rows
        go to a new file), to delete once the rows are written."""
        with self._cond:
            rows, self._rows = self._rows, []
            if not rows and not self._carry:
                return [], []  # the open file holds only calls in flight: keep it
            path = self._journal.rotate()
            paths, self._carry = self._carry + ([path] if path else []), []
            # Calls still in flight go into the new file before the old ones are deleted.
            self._journal.append(list(self._pending.values()))
        return rows, paths

    def close(self, locked_retry_s: float = 300.0) -> None:
        """Stop the thread and write everything queued, waiting up to `locked_retry_s`
        (beyond the store's own lock timeout) for a reader that holds the file."""
        in_flight.unregister(self.announce)
        with self._cond:
            self._closed = True
            self._cond.notify()
            # Sent and never answered while this writer was open: they stay `interrupted`.
            self._rows.extend(self._pending.values())
            self._pending.clear()
        self._thread.join()
        deadline = time.monotonic() + locked_retry_s
        while True:
            try:
                self.flush()
                return
            except StorageError as exc:
                if not isinstance(exc.__cause__, DatabaseLockedError) or time.monotonic() > deadline:
                    raise
                log.warning("database still locked; %d rows waiting: %s", len(self._rows), exc)

    def _write(self, rows: list[Row], journaled: list[Path]) -> None:
        if not rows:
            Journal.discard(journaled)  # held only calls in flight, journaled again since
            return
        with self._write_lock:
            try:
                started = time.monotonic()
                self.store.write(rows)
                self.last_flush_s = time.monotonic() - started
                self.rows_written += len(rows)
                self.flushes += 1
                Journal.discard(journaled)  # those rows are committed now
                # Failed rows are requeued in front, so a success wrote them too.
                self._error = None
            except BaseException as exc:  # keep the rows: a later flush retries them
                log.error("flush of %d rows failed: %s", len(rows), exc)
                with self._cond:
                    self._rows[:0] = rows
                    self._carry[:0] = journaled
                self._error = exc

    def _loop(self) -> None:
        while True:
            with self._cond:
                if not self._closed and len(self._rows) < self.max_rows:
                    self._cond.wait(self._interval())
                if self._closed:
                    return
            self._write(*self._take())

    def _interval(self) -> float:
        """The wait before the next flush: `flush_interval_s`, or longer where flushes are
        slow, so flushing takes at most FLUSH_SHARE of the time. Each flush opens and
        closes the file (which keeps it free for readers): ~50 ms on a 15 MB database,
        ~100 ms on a loaded 2-core machine, 20% of a core at two flushes a second on the
        1,000 x 16 bench. A later flush loses nothing at a crash: the journal holds the
        rows meanwhile."""
        return max(self.flush_interval_s, self.last_flush_s / FLUSH_SHARE)

    def _raise_if_failed(self) -> None:
        if self._error is not None:
            exc, self._error = self._error, None
            raise StorageError(f"writing to {self.store.path} failed: {exc}") from exc
