"""Warm sympy worker processes (``_worker.py``) on the shared process-pool primitive.

Why processes: sympy (and latex2sympy under math-verify) can hang in C-level code, which
``signal.alarm`` cannot interrupt (and alarm does not work off the main thread, where the
flows call the checker). An overrunning worker's process group is SIGKILLed and a fresh one
is started at once, so its imports overlap with the caller's next work.
"""

from __future__ import annotations

import atexit
import json
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

from proofflow.verifiers.procs import Child, ChildSpec, Pool, ReadTimeout, Rlimits, lines

__all__ = ["ACQUIRE_TIMEOUT_S", "AnswerPool", "default_pool"]

_STARTUP_TIMEOUT_S = 60.0
# How long a check waits for a busy worker before it reports "could not decide in time".
ACQUIRE_TIMEOUT_S = 120.0
_MEMORY_MB = 2048  # a runaway simplification fails in the worker; the host lives
_WORKER_SCRIPT = Path(__file__).with_name("_worker.py")


class _Worker:
    """One warm worker. Not thread-safe: the pool lends it to one caller."""

    def __init__(self) -> None:
        # By path and isolated (-I): a stray math_verify.py or sympy.py in the caller's
        # working directory must not shadow the real packages.
        spec = ChildSpec(argv=(sys.executable, "-I", str(_WORKER_SCRIPT)), limits=Rlimits(memory_mb=_MEMORY_MB))
        self.child = Child(spec)
        self.child.start()
        self._ready = False

    def compare(self, gold: str, pred: str, timeout_s: float) -> dict[str, Any]:
        """The worker's reply; ReadTimeout when it overruns (the caller retires it)."""
        if not self._ready:
            # Import time is not charged to the first request's timeout.
            try:
                self.child.read_frame(lines, time.monotonic() + _STARTUP_TIMEOUT_S)
            except ReadTimeout:
                raise RuntimeError("answer worker did not start") from None
            self._ready = True
        req = json.dumps({"gold": gold, "pred": pred}).encode() + b"\n"
        reply: dict[str, Any] = json.loads(self.child.request(req, lines, time.monotonic() + timeout_s))
        return reply

    def close(self) -> None:
        self.child.kill()


class AnswerPool:
    """Workers lent one caller at a time; a dead or timed-out worker is replaced."""

    def __init__(self, size: int) -> None:
        self._pool: Pool[_Worker] = Pool(_Worker, size, name="answer", replace_eagerly=True)

    def compare(self, gold: str, pred: str, timeout_s: float) -> dict[str, Any] | None:
        """The worker's reply, or None when it overran ``timeout_s``.

        NoWorkerFree when no worker frees up within ACQUIRE_TIMEOUT_S; other errors (the
        worker died) propagate after the worker is replaced."""
        try:
            with self._pool.lease(ACQUIRE_TIMEOUT_S) as w:
                return w.compare(gold, pred, timeout_s)
        except ReadTimeout:  # the lease replaced the worker
            return None

    def close(self) -> None:
        self._pool.close()


_pool: AnswerPool | None = None
_pool_lock = threading.Lock()


def default_pool() -> AnswerPool:
    """The process-wide pool (two workers at most; closed at interpreter exit)."""
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = AnswerPool(size=max(1, min(2, os.cpu_count() or 1)))
            atexit.register(_pool.close)
        return _pool
