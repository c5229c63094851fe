"""The per-process resource cache of the stage tasks: made lazily on first use, once per
process and per configuration (keyed by a hash of the pydantic models' JSON), reused by
every later task in that process, closed when the process shuts down (atexit, and the
Dask worker plugin's teardown in flows/runners.py: a worker that is retired or a cluster
that is closed runs it before the process goes away).

Thread-safe: the thread runner's tasks and a Dask worker's task threads share one
instance of each resource. What is cached (the model client, the checkers) is in
tasks/resources.py; this module only keeps and closes.
"""

from __future__ import annotations

import atexit
import hashlib
import logging
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import BaseModel

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass
class _Entry:
    value: Any
    close: Callable[[Any], None]


_lock = threading.RLock()
_entries: dict[tuple[str, str], _Entry] = {}
_owner_pid = os.getpid()
_atexit_registered = False


def config_key(*models: BaseModel) -> str:
    """A stable hash of the models' JSON: equal settings share one resource."""
    h = hashlib.sha256()
    for m in models:
        h.update(type(m).__name__.encode())
        h.update(m.model_dump_json().encode())
    return h.hexdigest()[:16]


def cached(kind: str, models: tuple[BaseModel, ...], make: Callable[[], T], close: Callable[[T], None]) -> T:
    """This process's `kind` resource for these settings: made by `make` the first time,
    closed by `close` at close_all()."""
    global _atexit_registered, _owner_pid
    key = (kind, config_key(*models))
    with _lock:
        if os.getpid() != _owner_pid:
            # A forked child inherited the parent's table: those processes and sockets
            # are the parent's to close, so forget them (never close them from here).
            _entries.clear()
            _owner_pid = os.getpid()
        entry = _entries.get(key)
        if entry is None:
            # Made under the lock: two tasks starting together must not both start a
            # pool of Coq sessions. Creation is rare (once per process and config).
            entry = _Entry(make(), close)
            _entries[key] = entry
            if not _atexit_registered:
                atexit.register(close_all)
                _atexit_registered = True
        return entry.value  # type: ignore[no-any-return]


def close_all() -> None:
    """Close every resource this process made (idempotent). The next call of a getter
    makes a fresh one."""
    with _lock:
        if os.getpid() != _owner_pid:
            _entries.clear()
            return
        entries = list(_entries.values())
        _entries.clear()
    for entry in entries:
        try:
            entry.close(entry.value)
        except Exception:  # noqa: BLE001 - one failing close must not leak the others
            log.warning("closing %r failed", entry.value, exc_info=True)
    # Pools the verifiers make themselves on first use (nothing to inject them into).
    _close_default_sandbox()
    _close_answer_pool()


def open_count() -> int:
    """Resources open in this process (tests and the worker plugin's log line)."""
    with _lock:
        return 0 if os.getpid() != _owner_pid else len(_entries)


def _close_default_sandbox() -> None:
    """Close the process-wide sandbox if one was made (default_sandbox() makes a fresh one
    on the next use)."""
    import sys

    mod: Any = sys.modules.get("proofflow.verifiers.sandbox.runner")
    box = getattr(mod, "_default", None) if mod is not None else None
    if box is not None:
        box.close()


def _close_answer_pool() -> None:
    """The answer checker's sympy workers are made by verifiers/answer/pool.py on first
    use (the checker calls it itself; nothing to inject). Close them with the rest so a
    retired Dask worker leaves no process behind, and forget the pool so a later check
    in this process makes a fresh one."""
    import sys

    mod: Any = sys.modules.get("proofflow.verifiers.answer.pool")
    if mod is None:  # never imported here: no workers to close
        return
    with mod._pool_lock:
        pool, mod._pool = mod._pool, None
    if pool is not None:
        pool.close()


@contextmanager
def scoped() -> Iterator[None]:
    """Close everything made inside the block (tests, one-shot scripts)."""
    try:
        yield
    finally:
        close_all()
