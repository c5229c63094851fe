"""The writer paces its flushes by how long they take (storage/db.py BatchWriter._interval):
each flush opens and closes the database file, so slow flushes come less often; the
journal holds the rows meanwhile."""

from __future__ import annotations

import time
from pathlib import Path

from proofflow.storage.db import FLUSH_SHARE, BatchWriter, Store
from proofflow.storage.records import CallRow


def _call(k: int) -> CallRow:
    return CallRow(call_id=f"c_{k}", run_id="r", problem_id="p", stage="generate", endpoint="u", model="m",
                   n=1, seed=k, attempt=0, status="ok", error=None, prompt_tokens=1, completion_tokens=1,
                   latency_s=0.0, cost=None)


def test_slow_flushes_come_less_often_and_every_row_is_written(tmp_path: Path) -> None:
    store = Store(tmp_path / "db.duckdb")
    real_write = store.write
    flush_s = 0.15

    def slow_write(rows: list) -> None:  # a flush that takes 150 ms (a big file on a loaded machine)
        time.sleep(flush_s)
        real_write(rows)

    store.write = slow_write  # type: ignore[method-assign]
    writer = BatchWriter(store, flush_interval_s=0.02)
    try:
        started = time.monotonic()
        k = 0
        while time.monotonic() - started < 3.0:  # rows keep coming, as in a run
            writer.put(_call(k))
            k += 1
            time.sleep(0.01)
        flushes = writer.flushes
    finally:
        writer.close()
    # unpaced: one flush every 0.02 + 0.15 s, ~17 in 3 s; paced: every ~1.5 s + 0.15 s
    assert 1 <= flushes <= 3, flushes
    assert writer.last_flush_s >= flush_s and writer.last_flush_s / FLUSH_SHARE > 1.0
    assert store.query("SELECT count(*) FROM calls")[1] == [(k,)]
