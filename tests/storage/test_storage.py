"""The DuckDB store: idempotent writes, batching, resume state, and a locked file."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from proofflow.storage.db import BatchWriter, DatabaseLockedError, StorageError, Store
from proofflow.storage.records import ResultRow, RunRow, SampleRow, VerdictRow


def sample(i: int, run: str = "r1", problem: str = "p1", stage: str = "generate") -> SampleRow:
    return SampleRow(
        sample_id=f"s{i}", run_id=run, problem_id=problem, stage=stage, parent_id=None, idx=i,
        round=0, call_id="c1", model="m", endpoint="http://x/v1", params="{}", seed=i,
        prompt="p", completion=f"answer {i}", finish_reason="stop", prompt_tokens=3,
        completion_tokens=5, tokens_exact=True, latency_s=0.1, cost=None,
    )


def verdict(i: int, outcome: str = "pass") -> VerdictRow:
    return VerdictRow(
        sample_id=f"s{i}", verifier="answer", verifier_version="1", run_id="r1", problem_id="p1",
        outcome=outcome, reason=None, answer=str(i), feedback="", details="{}", duration_s=0.0,
    )


def test_write_is_idempotent_and_round_trips(tmp_path: Path) -> None:
    store = Store(tmp_path / "t.duckdb")
    rows = [sample(i) for i in range(3)] + [verdict(0), verdict(1, "fail")]
    assert store.write(rows) == 5
    store.write(rows + [sample(0)])  # rerun: same keys, no duplicates
    _, counts = store.query("SELECT (SELECT count(*) FROM samples), (SELECT count(*) FROM verdicts)")
    assert counts == [(3, 2)]
    state = store.load_run_state("r1")
    p = state.problems["p1"]
    assert set(p.samples) == {"s0", "s1", "s2"}
    assert p.samples["s1"].completion == "answer 1" and p.samples["s1"].tokens_exact is True
    assert p.verdicts[("s1", "answer")].outcome == "fail"
    assert not state.done("p1")
    store.write([ResultRow("r1", "p1", "majority", "0", "s0", True, True, 3, 1)])
    assert store.load_run_state("r1").done("p1")


def test_nulls_and_types_survive(tmp_path: Path) -> None:
    store = Store(tmp_path / "t.duckdb")
    row = sample(0)
    row.cost = None
    row.prompt_tokens = None
    store.write([row])
    got = store.load_run_state("r1").problems["p1"].samples["s0"]
    assert got.cost is None and got.prompt_tokens is None and got.seed == 0


def test_start_run_resumes_by_name(tmp_path: Path) -> None:
    store = Store(tmp_path / "t.duckdb")
    run = RunRow("r1", "demo", "gvr", "examples", "m", "{}", "h1", "0.1", "running")
    assert store.start_run(run).run_id == "r1"
    store.finish_run("r1", "failed")
    again = store.start_run(RunRow("r1", "demo", "gvr", "examples", "m", "{}", "h2", "0.1", "running"))
    assert again.config_hash == "h1" and again.status == "running"  # the stored run, not a new one
    assert [r.name for r in store.list_runs()] == ["demo"]


def test_batch_writer_flushes_on_interval_and_close(tmp_path: Path) -> None:
    store = Store(tmp_path / "t.duckdb")
    writer = BatchWriter(store, flush_interval_s=0.05)
    writer.put(*[sample(i) for i in range(10)])
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        if store.path.exists() and store.query("SELECT count(*) FROM samples")[1][0][0] == 10:
            break
        time.sleep(0.05)
    assert store.query("SELECT count(*) FROM samples")[1][0][0] == 10
    writer.put(sample(10))
    writer.close()
    assert store.query("SELECT count(*) FROM samples")[1][0][0] == 11
    assert writer.rows_written == 11


HOLDER = textwrap.dedent(
    """
    import sys, time, duckdb
    con = duckdb.connect(sys.argv[1])
    con.execute("CREATE TABLE IF NOT EXISTS hold(x INT)")
    print("locked", flush=True)
    time.sleep(float(sys.argv[2]))
    """
)


def _hold_lock(path: Path, seconds: float) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(path), str(seconds)],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
    return proc


def test_locked_database_gives_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "locked.duckdb"
    proc = _hold_lock(path, 30)
    try:
        store = Store(path, lock_timeout_s=0.5)
        with pytest.raises(DatabaseLockedError) as err:
            store.write([sample(0)])
        message = str(err.value)
        assert str(path) in message and f"process {proc.pid}" in message
    finally:
        proc.kill()
        proc.wait()


def test_writer_keeps_rows_while_locked_and_writes_them_later(tmp_path: Path) -> None:
    path = tmp_path / "later.duckdb"
    Store(path).init()
    proc = _hold_lock(path, 30)
    store = Store(path, lock_timeout_s=0.2)
    writer = BatchWriter(store, flush_interval_s=0.05)
    writer.put(*[sample(i) for i in range(5)])
    with pytest.raises(StorageError, match="locked"):
        writer.flush()
    writer.put(sample(5))  # a held lock delays writes; it does not fail the producer
    proc.kill()
    proc.wait()
    writer.close()  # the lock is gone: nothing queued was lost
    assert Store(path).query("SELECT count(*) FROM samples")[1][0][0] == 6


def test_lock_wait_succeeds_when_holder_leaves(tmp_path: Path) -> None:
    path = tmp_path / "brief.duckdb"
    proc = _hold_lock(path, 1.0)
    try:
        Store(path, lock_timeout_s=20).write([sample(0)])
    finally:
        proc.wait()
    assert Store(path).query("SELECT count(*) FROM samples")[1][0][0] == 1


READER = textwrap.dedent(
    """
    import sys, time, duckdb
    con = duckdb.connect(sys.argv[1], read_only=True)
    con.execute("SELECT 1").fetchall()
    print("locked", flush=True)
    time.sleep(float(sys.argv[2]))
    """
)


def test_lock_message_says_whether_the_holder_reads_or_writes(tmp_path: Path) -> None:
    # Issue 12.8: a read-only reader was reported as "open for writing".
    path = tmp_path / "held.duckdb"
    Store(path).init()
    reader = subprocess.Popen([sys.executable, "-c", READER, str(path), "30"],
                              stdout=subprocess.PIPE, text=True)
    assert reader.stdout is not None and reader.stdout.readline().strip() == "locked"
    try:
        with pytest.raises(DatabaseLockedError) as err:
            Store(path, lock_timeout_s=0.3).write([sample(0)])
        message = str(err.value)
        assert f"process {reader.pid}" in message and "read-only" in message
        assert "for writing" not in message
    finally:
        reader.kill()
        reader.wait()
    writer = _hold_lock(path, 30)
    try:
        with pytest.raises(DatabaseLockedError) as err:
            Store(path, lock_timeout_s=0.3).query("SELECT 1")
        assert f"process {writer.pid}" in str(err.value) and "for writing" in str(err.value)
    finally:
        writer.kill()
        writer.wait()


KILLED_MID_FLUSH = textwrap.dedent(
    """
    import os, signal, sys
    from proofflow.storage import bulk
    from proofflow.storage.db import Store
    sys.path.insert(0, sys.argv[2])
    from test_storage import sample
    real, calls = bulk.ROW_JSON, [0]
    class Killing:  # encodes rows as bulk's own encoder does, until the third
        def encode(self, value):
            calls[0] += 1
            if calls[0] == 3:  # the batch file is open and half written
                os.kill(os.getpid(), signal.SIGKILL)
            return real.encode(value)
    bulk.ROW_JSON = Killing()
    Store(sys.argv[1]).write([sample(i) for i in range(5)])
    """
)


def test_a_run_killed_mid_flush_leaves_no_prompts_in_tmp(tmp_path: Path) -> None:
    # Issue 12.8: /tmp/proofflow-batch-*.jsonl files holding prompts were left behind.
    db = tmp_path / "data" / "k.duckdb"
    db.parent.mkdir()
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = {**__import__("os").environ, "TMPDIR": str(tmp)}
    proc = subprocess.run([sys.executable, "-c", KILLED_MID_FLUSH, str(db), str(Path(__file__).parent)],
                          env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == -9, proc.stderr
    assert list(tmp.iterdir()) == []  # nothing in the temp dir
    left = list((tmp_path / "data").rglob("*.jsonl"))
    assert len(left) == 1 and left[0].parent == db.with_name("k.duckdb.work")
    Store(db).write([sample(0)])  # the next writer on this database removes it
    assert list((tmp_path / "data").rglob("*.jsonl")) == []


def test_a_truncated_database_is_named_not_a_traceback(tmp_path: Path) -> None:
    # Issue 12.8: `proofflow runs` / `solve` on a truncated file gave raw DuckDB tracebacks.
    good = tmp_path / "good.duckdb"
    store = Store(good)
    store.start_run(RunRow("r1", "demo", "gvr", "examples", "m", "{}", "h1", "0.1", "running"))
    data = good.read_bytes()
    for size in (100, 300_000):
        cut = tmp_path / f"cut{size}.duckdb"
        cut.write_bytes(data[:size])
        with pytest.raises(StorageError) as err:
            Store(cut).list_runs()
        assert str(cut) in str(err.value) and "truncated or damaged" in str(err.value)
    junk = tmp_path / "junk.duckdb"
    junk.write_text("not a database\n")
    with pytest.raises(StorageError, match="junk.duckdb"):
        Store(junk).write([sample(0)])
    # The CLI prints one line naming the file, and no traceback.
    proc = subprocess.run([sys.executable, "-m", "proofflow.cli", "runs", "--db", str(tmp_path / "cut300000.duckdb")],
                          capture_output=True, text=True, timeout=120)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0 and "cut300000.duckdb" in out and "Traceback" not in out


KILLED_WITH_ROWS_QUEUED = textwrap.dedent(
    """
    import os, signal, sys
    sys.path.insert(0, sys.argv[2])
    from proofflow.storage.db import BatchWriter, Store
    from test_storage import sample
    writer = BatchWriter(Store(sys.argv[1]), flush_interval_s=3600)
    writer.put(*[sample(i) for i in range(5)])
    writer.flush()                                  # these five are in the database
    writer.put(*[sample(i) for i in range(5, 12)])  # these seven only in the queue
    os.kill(os.getpid(), signal.SIGKILL)
    """
)


def test_rows_queued_when_a_writer_is_killed_are_recovered(tmp_path: Path) -> None:
    # bench_crash: a SIGKILL lost every answer that arrived since the last flush (~0.5 s),
    # and the resume paid for those model calls again.
    db = tmp_path / "j.duckdb"
    proc = subprocess.run([sys.executable, "-c", KILLED_WITH_ROWS_QUEUED, str(db), str(Path(__file__).parent)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == -9, proc.stderr
    assert Store(db).query("SELECT count(*) FROM samples")[1][0][0] == 5
    journals = list(db.with_name("j.duckdb.work").glob("journal-*.jsonl"))
    assert len(journals) == 1
    Store(db).init()  # the next process to open the database for writing replays it
    _, rows = Store(db).query("SELECT count(*), count(DISTINCT sample_id) FROM samples")
    assert rows == [(12, 12)]
    assert list(db.with_name("j.duckdb.work").glob("journal-*.jsonl")) == []
    state = Store(db).load_run_state("r1")
    assert state.problems["p1"].samples["s7"].completion == "answer 7"


def test_journal_kept_until_a_flush_commits(tmp_path: Path) -> None:
    path = tmp_path / "held.duckdb"
    Store(path).init()
    work = path.with_name("held.duckdb.work")
    proc = _hold_lock(path, 30)
    writer = BatchWriter(Store(path, lock_timeout_s=0.2), flush_interval_s=3600)
    writer.put(*[sample(i) for i in range(3)])
    with pytest.raises(StorageError, match="locked"):
        writer.flush()
    writer.put(sample(3))
    assert len(list(work.glob("journal-*.jsonl"))) == 2  # the failed batch's file is kept
    proc.kill()
    proc.wait()
    writer.close()
    assert list(work.glob("journal-*.jsonl")) == []
    assert Store(path).query("SELECT count(*) FROM samples")[1][0][0] == 4


def test_free_blocks_past_the_end_of_a_healthy_file_are_not_damage(tmp_path: Path) -> None:
    # A healthy database whose free list runs past the last block on disk (tables dropped
    # after later ones were written: DuckDB truncates the file, total_blocks still counts
    # them) was refused as "cut short" on its next write; every resume of a real run was.
    import duckdb

    db = tmp_path / "healthy.duckdb"
    con = duckdb.connect(str(db))
    for name in "abcd":
        con.execute(f"CREATE TABLE {name} AS SELECT range AS i, repeat('x', 50) AS s FROM range(100000)")
        con.execute("CHECKPOINT")
    for name in "bd":
        con.execute(f"DROP TABLE {name}")
        con.execute("CHECKPOINT")
    con.close()
    con = duckdb.connect(str(db), read_only=True)
    block_size, total = con.execute("SELECT block_size, total_blocks FROM pragma_database_size()").fetchone()
    con.close()
    assert db.stat().st_size < 3 * 4096 + block_size * total  # the case this test is about
    Store(db).check_intact()
    Store(db).write([sample(0)])  # opens for writing: no DatabaseCorruptError
