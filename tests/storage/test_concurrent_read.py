"""Reading a database while a run writes to it, with two real processes.

The mechanism under test (docs/sql.md, "Reading while a run writes"): the writer opens the
file only for each flush and closes it again; a reader opens it read-only between flushes
and both sides retry while the other holds the lock. This file is also the two processes'
entry point: `python tests/storage/test_concurrent_read.py writer|reader DB ...`.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

RUN_ID = "concurrent"
PROBLEMS = 4


def _writer(db: str, seconds: float) -> None:
    from proofflow.storage.db import BatchWriter, Store
    from proofflow.storage.records import ProblemRow, RunProblemRow, RunRow, SampleRow, VerdictRow

    store = Store(db)
    store.start_run(RunRow(run_id=RUN_ID, name=RUN_ID, strategy="test", problem_set=None,
                           model="m", config="{}", config_hash="h", code_version="t",
                           status="running"))
    writer = BatchWriter(store, flush_interval_s=0.2)
    writer.put(*[ProblemRow(problem_id=f"P{p}", source=None, source_id=str(p), split=None,
                            kind="answer", statement="s", formal_statement=None, header=None,
                            reference_answer="1", metadata=None) for p in range(PROBLEMS)])
    writer.put(*[RunProblemRow(run_id=RUN_ID, problem_id=f"P{p}", position=p)
                 for p in range(PROBLEMS)])
    puts = 0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        # A steady trickle like a real run: a few samples and their verdicts at a time.
        for _ in range(5):
            p = f"P{puts % PROBLEMS}"
            sample = SampleRow(
                sample_id=f"s{puts}", run_id=RUN_ID, problem_id=p, stage="generate",
                parent_id=None, idx=puts // PROBLEMS, round=0, call_id=None, model="m",
                endpoint="e", params=None, seed=puts, prompt="p", completion="c" * 200,
                finish_reason="stop", prompt_tokens=10, completion_tokens=20,
                tokens_exact=True, latency_s=0.0, cost=None)
            verdict = VerdictRow(sample_id=sample.sample_id, verifier="answer",
                                 verifier_version="1", run_id=RUN_ID, problem_id=p,
                                 outcome="pass" if puts % 3 == 0 else "fail", reason=None,
                                 answer=str(puts % 7), feedback=None, details=None,
                                 duration_s=0.0)
            writer.put(sample, verdict)
            puts += 1
        time.sleep(0.01)
    writer.close()
    store.finish_run(RUN_ID, "completed")
    print(json.dumps({"samples_put": puts, "rows_written": writer.rows_written,
                      "flushes": writer.flushes}))


def _reader(db: str, stop_file: str) -> None:
    from proofflow.storage.db import Store

    store = Store(db)
    counts: list[int] = []
    queries = 0
    # Wait for the writer's first flush to create the file.
    while not Path(db).exists() and not Path(stop_file).exists():
        time.sleep(0.05)
    final_round = False
    while True:
        # One plain count and one query over the heavier metric views, as a user would.
        _, [(n,)] = store.query("SELECT count(*) FROM samples WHERE run_id = ?", [RUN_ID])
        store.query("SELECT * FROM v_run_summary")
        store.query("SELECT k, pass_at_k FROM v_pass_at_k WHERE run_id = ?", [RUN_ID])
        counts.append(n)
        queries += 3
        if final_round:
            break
        if Path(stop_file).exists():
            final_round = True  # one more read after the writer has finished
        time.sleep(0.02)
    print(json.dumps({"counts": counts, "queries": queries}))


def test_reader_process_queries_while_writer_process_writes(tmp_path: Path) -> None:
    db = tmp_path / "live.duckdb"
    stop = tmp_path / "writer.done"
    me = str(Path(__file__).resolve())
    reader = subprocess.Popen([sys.executable, me, "reader", str(db), str(stop)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    writer = subprocess.Popen([sys.executable, me, "writer", str(db), "4"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    w_out, w_err = writer.communicate(timeout=120)
    stop.touch()
    r_out, r_err = reader.communicate(timeout=120)
    assert writer.returncode == 0, w_err
    assert reader.returncode == 0, r_err

    written = json.loads(w_out)
    seen = json.loads(r_out)
    counts = seen["counts"]
    # The writer lost nothing: every sample it was handed is in the file.
    # Several flushes, read between: the writer paces them by how long they take (a reader
    # holding the file makes a flush wait, then the next comes later: BatchWriter._interval).
    assert written["flushes"] >= 3
    from proofflow.storage.db import Store

    _, [(stored,)] = Store(db).query("SELECT count(*) FROM samples WHERE run_id = ?", [RUN_ID])
    assert stored == written["samples_put"]
    # The reader saw the run grow, never shrink, and finally saw all of it.
    assert counts == sorted(counts)
    assert len(set(counts)) >= 3, counts
    assert counts[-1] == written["samples_put"]
    assert seen["queries"] >= 9


if __name__ == "__main__":
    role, db, arg = sys.argv[1:4]
    if role == "writer":
        _writer(db, float(arg))
    else:
        _reader(db, arg)
