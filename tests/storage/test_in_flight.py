"""Calls in flight (storage/in_flight.py): the writer journals them, keeps them out of the
database, lets the final row replace them, and replay keeps the final row of a call."""

from __future__ import annotations

import json
from pathlib import Path

from proofflow.storage import in_flight
from proofflow.storage.db import BatchWriter, Store
from proofflow.storage.journal import PREFIX, replay
from proofflow.storage.records import CallRow


def _call(call_id: str, status: str, completion: int | None = None) -> CallRow:
    return CallRow(call_id=call_id, run_id="r", problem_id="p", stage="generate", endpoint="u", model="m",
                   n=1, seed=1, attempt=0, status=status, error=None, prompt_tokens=7,
                   completion_tokens=completion, latency_s=0.0, cost=None)


def _calls(store: Store) -> list[tuple[str, str]]:
    return store.query("SELECT call_id, status FROM calls ORDER BY call_id")[1]


def test_pending_calls_stay_out_of_the_database_until_answered_or_closed(tmp_path: Path) -> None:
    store = Store(tmp_path / "db.duckdb")
    writer = BatchWriter(store, flush_interval_s=60)
    assert in_flight.listening()
    in_flight.announce(_call("c_a", "interrupted"))
    in_flight.announce(_call("c_b", "interrupted"))
    writer.put(_call("c_other", "ok", 3))
    writer.flush()
    assert _calls(store) == [("c_other", "ok")]
    # the journal still holds the two in flight after the flush deleted the old file
    journaled = [json.loads(line)["r"]["call_id"]
                 for p in store.work_dir.glob(f"{PREFIX}*.jsonl") for line in p.read_text().splitlines()]
    assert sorted(journaled) == ["c_a", "c_b"]
    writer.put(_call("c_a", "ok", 5))  # the answer: replaces the pending row
    writer.close()  # c_b never answered while the writer was open: interrupted
    assert not in_flight.listening()
    assert _calls(store) == [("c_a", "ok"), ("c_b", "interrupted"), ("c_other", "ok")]
    assert not list(store.work_dir.glob(f"{PREFIX}*.jsonl"))


def test_replay_keeps_a_calls_final_row_over_its_pending_one(tmp_path: Path) -> None:
    import duckdb

    store = Store(tmp_path / "db.duckdb")
    store.write([_call("c_seed", "ok", 1)])  # creates the schema
    work = store.work_dir
    work.mkdir(parents=True, exist_ok=True)
    dead = work / f"{PREFIX}{__import__('socket').gethostname()}-999999999-1.jsonl"  # no such pid
    rows = [_call("c_done", "interrupted"), _call("c_lost", "interrupted"), _call("c_done", "ok", 9)]
    dead.write_text("".join(json.dumps({"t": "calls", "r": r.as_dict()}, default=str) + "\n" for r in rows))
    with duckdb.connect(str(store.path)) as con:
        assert replay(con, work) == 2
    got = store.query("SELECT call_id, status, completion_tokens FROM calls ORDER BY call_id")[1]
    assert got == [("c_done", "ok", 9), ("c_lost", "interrupted", None), ("c_seed", "ok", 1)]


def test_replay_keeps_the_newest_pending_row_of_an_unanswered_call(tmp_path: Path) -> None:
    """A call still in flight is recorded again with its prompt tokens counted
    (llm/late_count.py), and each journal file the writer rotates to carries it again;
    replay keeps the newest, reading a process's files in the order it wrote them (file
    10 after file 2, not by name)."""
    import dataclasses
    import socket

    import duckdb

    store = Store(tmp_path / "db.duckdb")
    store.write([_call("c_seed", "ok", 1)])
    work = store.work_dir
    work.mkdir(parents=True, exist_ok=True)
    estimated = dataclasses.replace(_call("c_held", "interrupted"), prompt_tokens=5, error="estimated")
    counted = dataclasses.replace(estimated, prompt_tokens=11, error="counted")
    for n, rows in ((2, [estimated]), (10, [estimated, counted])):
        path = work / f"{PREFIX}{socket.gethostname()}-999999999-{n}.jsonl"  # no such pid
        path.write_text("".join(json.dumps({"t": "calls", "r": r.as_dict()}, default=str) + "\n" for r in rows))
    # by name, file 2 is read last and its estimate would win
    with duckdb.connect(str(store.path)) as con:
        replay(con, work)
    got = store.query("SELECT call_id, status, prompt_tokens, error FROM calls ORDER BY call_id")[1]
    assert got == [("c_held", "interrupted", 11, "counted"), ("c_seed", "ok", 7, None)]
