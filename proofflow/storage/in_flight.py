"""Model calls in flight: a row for each HTTP attempt before it is sent, so a process
killed while a request is in flight still leaves a `calls` row for it (issue 20.14:
115 requests of a 20-kill series left none, and a run's recorded cost was lower than
what the endpoint served).

The model client (llm/client.py) announces every attempt here with status `interrupted`
and its prompt tokens; the process's BatchWriter (storage/db.py) journals it
(storage/journal.py: the journal survives SIGKILL and is replayed by the next process
that writes to the database) but does not write it to the database, and forgets it when
the attempt's final row (the same call_id: `ok` or `error`) is stored. So a row marked
`interrupted` reaches the database only when its process died (or closed its writer)
with the request unanswered. Without a writer in this process (a Dask / Ray worker, a
bench) an announcement goes nowhere.

A module of its own, importing nothing but the row type, so the client does not import
the database code.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from proofflow.storage.records import CallRow

INTERRUPTED = "interrupted"

Sink = Callable[[CallRow], None]

_lock = threading.Lock()
_sinks: list[Sink] = []  # the writers open in this process; the newest hears announcements


def listening() -> bool:
    """Whether an announcement would be recorded (the client counts prompt tokens only then)."""
    return bool(_sinks)


def announce(row: CallRow) -> None:
    """An attempt is about to be sent: record it as `interrupted` until its final row."""
    with _lock:
        sink = _sinks[-1] if _sinks else None
    if sink is not None:
        sink(row)


def register(sink: Sink) -> None:
    with _lock:
        _sinks.append(sink)


def unregister(sink: Sink) -> None:
    with _lock:
        if sink in _sinks:
            _sinks.remove(sink)
