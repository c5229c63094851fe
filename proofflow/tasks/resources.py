"""Per-process resources of the stage tasks: the model client and the verifier pools.

Whichever process runs a task (the flow's own process with the thread runner, or a
Dask / Ray worker process) gets its resources from here: created lazily on first use,
once per process and per configuration (keyed by a hash of the pydantic model's JSON),
reused by every later task in that process, and closed when the process shuts down
(atexit, and the Dask worker plugin's teardown in flows/runners.py: a worker that is
retired or a cluster that is closed runs it before the process goes away).

Nothing here holds run state (no store, no writer): a task gets a client or a checker,
does its work and returns rows; the flow writes them.

Thread-safe: the thread runner's tasks and a Dask worker's task threads share one
instance of each resource.
"""

from __future__ import annotations

import atexit
import hashlib
import logging
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel

from proofflow.config import EndpointConfig, ProveConfig, ReasoningConfig, SamplingConfig
from proofflow.llm.client import ModelClient
from proofflow.llm.stall import Stall

if TYPE_CHECKING:
    from proofflow.verifiers.formal import FormalChecker
    from proofflow.verifiers.sandbox import Sandbox

log = logging.getLogger(__name__)

T = TypeVar("T")

# Set in a process whose model calls must also take a Prefect global concurrency slot
# (Dask and Ray workers: many processes, maybe many machines, share one endpoint). The
# Dask worker plugin (flows/runners.py) sets it on every worker it joins; the Ray runner
# passes it in the workers' runtime environment. In the flow's own process (thread runner) the client's
# per-process semaphore already is the exact bound, and no API round trip is paid.
GLOBAL_LIMITS_ENV = "PROOFFLOW_GLOBAL_CONCURRENCY"


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


def _get(kind: str, models: tuple[BaseModel, ...], make: Callable[[], T], close: Callable[[T], None]) -> T:
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


# ------------------------------------------------------------------------- the getters

def model_client(endpoint: EndpointConfig, sampling: SamplingConfig,
                 reasoning: ReasoningConfig | None = None) -> ModelClient:
    """The model client for these settings. In a worker process that shares the endpoint
    with others (GLOBAL_LIMITS_ENV set), every request also holds a slot of the
    endpoint's Prefect global concurrency limit (flows/runners.py creates the limits)."""
    global_limits = os.environ.get(GLOBAL_LIMITS_ENV) == "1"
    return _get(
        "model_client", (endpoint, sampling, reasoning or ReasoningConfig()),
        lambda: ModelClient(endpoint, sampling,
                            slot=_slot_for(endpoint, sampling) if global_limits else None,
                            on_stall=_publish_stall, reasoning=reasoning),
        ModelClient.close,
    )


def _slot_for(endpoint: EndpointConfig, sampling: SamplingConfig) -> Callable[[str], AbstractContextManager[None]]:
    lease_s = endpoint.give_up_after(sampling.max_tokens) + 60.0
    return lambda url: prefect_slot(url, lease_s)


def formal_checker(prove: ProveConfig) -> FormalChecker:
    """The formal checker (Coq sessions, Lean REPLs, or a Kimina client) for these settings."""
    from proofflow.tasks.checker_settings import make_checker

    def close(checker: Any) -> None:
        closer = getattr(checker, "close", None)  # a Kimina client holds no processes
        if closer is not None:
            closer()

    checker: FormalChecker = _get("formal_checker", (prove,), lambda: make_checker(prove), close)
    return checker


def sandbox() -> Sandbox:
    """The process's Python sandbox (a pool of zygotes; root only): the verifiers' own
    process-wide one (sandbox.default_sandbox), which the execute stage also uses, so
    a process never holds two pools of zygotes. close_all() closes it."""
    from proofflow.verifiers.sandbox import default_sandbox

    return default_sandbox()


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


# --------------------------------------------------------------- model-call side effects

def prefect_slot(url: str, lease_s: float = 900.0) -> AbstractContextManager[None]:
    """Hold one slot of the base URL's Prefect global concurrency limit for one request.

    The limit is created (upserted) by the flow when its runner starts, with the
    endpoint's max_concurrency (flows/runners.py). The slot is leased for `lease_s` (the
    client passes the request's give-up time: a request never holds it longer), so the
    slots of a killed worker come back by themselves when their lease runs out.

    Why not `prefect.concurrency.sync.concurrency`: measured here, its acquire+release
    took 0.1-0.7 s uncontended and a median of 2.6 s with 8 requests at once (a service
    thread per limit, server-paced retries, lease renewal); two plain API calls take
    ~20 ms each, and a long request needs no renewal when the lease covers its give-up time.
    """
    return _leased_slot(limit_name(url), lease_s)


class LimitMissing(RuntimeError):
    """The endpoint's global concurrency limit does not exist on the Prefect server."""


@contextmanager
def _leased_slot(name: str, lease_s: float) -> Iterator[None]:
    import random
    import time

    import httpx
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        wait = 0.05
        while True:
            try:
                response = client.increment_concurrency_slots_with_lease(
                    names=[name], slots=1, mode="concurrency", lease_duration=lease_s)
            except httpx.HTTPStatusError as exc:
                if exc.response.status_code != 423:  # 423 Locked: every slot is taken
                    raise
                # Poll with jittered backoff up to 2 s (the server's Retry-After is
                # coarser; many workers polling at once stay spread out).
                time.sleep(wait * (0.5 + random.random()))
                wait = min(wait * 2, 2.0)
                continue
            body = response.json()
            if not body.get("limits"):
                raise LimitMissing(
                    f"Prefect global concurrency limit {name!r} does not exist on {client.api_url}; "
                    "the flow creates it when its runner starts (flows/runners.py)")
            lease_id = body["lease_id"]
            break
        try:
            yield
        finally:
            client.release_concurrency_slots_with_lease(lease_id)


def limit_name(url: str) -> str:
    """The Prefect global concurrency limit of one base URL (names allow no slashes)."""
    safe = "".join(c if c.isalnum() or c in "-_." else "-" for c in url.split("://", 1)[-1]).strip("-")
    return f"proofflow-endpoint-{safe}"[:120]


def _publish_stall(stall: Stall) -> None:
    # flows/progress.py is plain Python (no Prefect); the CLI's progress bar listens there.
    from proofflow.flows import progress

    progress.publish_stall(stall)


@contextmanager
def scoped() -> Iterator[None]:
    """Close everything made inside the block (tests, one-shot scripts)."""
    try:
        yield
    finally:
        close_all()
