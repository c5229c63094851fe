"""The exact prompt count of a call's pre-send row, asked for only when the call is still
in flight a while after it was sent.

A call's row is recorded before it is sent (status `interrupted`, storage/in_flight.py),
so a process killed meanwhile still shows what it asked; its prompt tokens come from the
server's /tokenize when it has one. Counting every request that way put one more HTTP
round trip in front of each request, on its path: 9% of the flow process's profile
samples on the 1,000 x 16 bench (bench/bench_pipeline.py). But a call answered soon
gets its final row with the server's own usage, and the count is never read. So the row
is recorded at once with an estimate, and one thread counts the calls still in flight
`after_s` later and records their row again with the count (the writer keeps the newest
row of a call: storage/db.py BatchWriter.announce).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable

from proofflow.storage.records import CallRow

Count = Callable[[], CallRow]  # the pre-send row again, its prompt tokens counted
Send = Callable[[CallRow], None]


class LateCount:
    """Thread-safe. `schedule` a call's count; `settle` it when the call ends: after
    `settle` returns, no row of that call is sent any more (its final row may follow)."""

    def __init__(self, after_s: float) -> None:
        self.after_s = after_s
        self._lock = threading.Lock()
        self._due: dict[str, tuple[float, Count, Send]] = {}  # call_id -> (when, count, send)
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._closed = False

    def schedule(self, call_id: str, count: Count, send: Send) -> None:
        with self._lock:
            if self._closed:
                return
            self._due[call_id] = (time.monotonic() + self.after_s, count, send)
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="proofflow-late-count", daemon=True)
                self._thread.start()
        self._wake.set()

    def settle(self, call_id: str) -> None:
        with self._lock:  # waits for a send of this call in progress
            self._due.pop(call_id, None)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._due.clear()
        self._wake.set()

    def _loop(self) -> None:
        while True:
            with self._lock:
                if self._closed:
                    return
                now = time.monotonic()
                due = [(cid, count, send) for cid, (when, count, send) in self._due.items() if when <= now]
                for cid, count, send in due:  # started: not picked again
                    self._due[cid] = (math.inf, count, send)
                later = min((when for when, _, _ in self._due.values() if when != math.inf), default=None)
            for cid, count, send in due:
                row = count()  # the server's /tokenize, outside the lock (a settle must not wait for it)
                with self._lock:
                    if cid in self._due:  # still in flight: its row, counted
                        del self._due[cid]
                        send(row)
            if not due:
                self._wake.wait(None if later is None else max(0.0, later - time.monotonic()))
                self._wake.clear()
