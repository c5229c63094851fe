"""Prefect global concurrency limits per model endpoint, over Prefect's HTTP API: where
several flows (or worker processes, or machines) share an endpoint, each model request
holds one slot of its base URL's limit, so the bound holds across all of them
(flows/runners.py creates the limits).

A process takes the slots in blocks (`SlotBlocks`, `endpoint.slot_block` at a time, one
API call), hands them out to its own requests without an API call, and gives a block
back (one API call) when its queue is idle. A block is a lease: renewed while the
process lives (one call per `lease_s / 3`), so a killed process's slots come back by
themselves when the lease runs out (Prefect's repossessor, every 15 s by default).
Measured: one request, one slot, two API calls of ~20 ms each (`prefect_slot`); blocks
cost a handful of calls per run (tests/flows/test_model_calls_local.py counts them).
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)


class LimitMissing(RuntimeError):
    """The endpoint's global concurrency limit does not exist on the Prefect server."""


def limit_name(url: str) -> str:
    """The Prefect global concurrency limit of one base URL (names allow no slashes)."""
    safe = "".join(c if c.isalnum() or c in "-_." else "-" for c in url.split("://", 1)[-1]).strip("-")
    return f"proofflow-endpoint-{safe}"[:120]


# ------------------------------------------------------------------ the API calls

class _OverLimit(Exception):
    """More slots were asked for at once than the limit has (Prefect answers 422)."""


def _take(client: Any, name: str, slots: int, lease_s: float) -> str | None:
    """Take `slots` slots of limit `name` under one lease: its id, or None when that many
    are not free now (Prefect answers 423 Locked; it takes all or nothing)."""
    import httpx

    try:
        response = client.increment_concurrency_slots_with_lease(
            names=[name], slots=slots, mode="concurrency", lease_duration=lease_s)
    except httpx.HTTPStatusError as exc:
        if exc.response.status_code == 423:
            return None
        if exc.response.status_code == 422 and "greater than the limit" in exc.response.text:
            raise _OverLimit() from None
        raise
    body = response.json()
    if not body.get("limits"):
        raise LimitMissing(
            f"Prefect global concurrency limit {name!r} does not exist on {client.api_url}; "
            "the flow creates it when it starts (flows/runners.py upsert_limits)")
    return str(body["lease_id"])


def _give_back(client: Any, lease_id: str) -> None:
    client.release_concurrency_slots_with_lease(lease_id)


def prefect_slot(url: str, lease_s: float = 900.0) -> AbstractContextManager[None]:
    """Hold one slot of the base URL's limit for one request: two API calls (take, give
    back), the slot leased for `lease_s` so a killed holder's slot comes back. What
    `SlotBlocks` does per block; kept for a process that makes one request.

    Why not `prefect.concurrency.sync.concurrency`: measured here, its acquire+release
    took 0.1-0.7 s uncontended and a median of 2.6 s with 8 requests at once (a service
    thread per limit, server-paced retries, lease renewal); two plain API calls take
    ~20 ms each."""
    return _one_slot(limit_name(url), lease_s)


@contextmanager
def _one_slot(name: str, lease_s: float) -> Iterator[None]:
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        wait = 0.05
        while (lease_id := _take(client, name, 1, lease_s)) is None:
            # Poll with jittered backoff up to 2 s (many processes polling stay spread out).
            time.sleep(wait * (0.5 + random.random()))
            wait = min(wait * 2, 2.0)
        try:
            yield
        finally:
            _give_back(client, lease_id)


# ------------------------------------------------------------------ slots in blocks

MIN_LEASE_S = 60.0  # the shortest lease Prefect's API accepts
POLL_FIRST_S = 0.05  # a starved pool's first wait before asking Prefect again
POLL_WITH_SLOTS_S = 0.5  # the least wait when the pool holds slots already
POLL_MAX_S = 2.0  # its longest (jittered x0.5-1.5: many processes polling stay spread out)


@dataclass(eq=False)
class _Block:
    lease_id: str
    size: int
    in_use: int = 0
    renewed: float = field(default_factory=time.monotonic)
    last_used: float = field(default_factory=time.monotonic)


class SlotBlocks:
    """One base URL's Prefect global concurrency slots, taken in blocks of up to `block`
    and handed out in this process (module doc). Thread-safe; `slot()` holds one.

    When every held slot is busy and a request waits, one thread takes a new block: the
    largest of block, block/2, ..., 1 that Prefect has free (it grants all or nothing),
    else the pool (one clock for all its threads) polls with jittered backoff, one slot
    at a time, while waiting also for a slot of this process to come free. A block none of
    whose slots is used for `idle_s`, with nothing waiting, is given back, so other flows
    sharing the endpoint get its slots. Not fair: a busy process keeps its blocks while it
    has requests waiting, so another process sharing the limit waits until it idles."""

    def __init__(self, url: str, block: int = 8, lease_s: float = MIN_LEASE_S, idle_s: float = 2.0,
                 client: Any = None) -> None:
        self.name = limit_name(url)
        self.block = max(1, block)
        self.lease_s = max(MIN_LEASE_S, lease_s)
        self.idle_s = idle_s
        self.api_calls = 0  # Prefect API calls made (take, give back, renew)
        self._count_lock = threading.Lock()
        self._client = client
        self._own_client = client is None
        self._cond = threading.Condition()
        self._blocks: list[_Block] = []
        self._waiting = 0
        self._fetching = False
        self._poll_s = POLL_FIRST_S  # the pool's backoff between polls while starved
        self._next_fetch = 0.0  # monotonic time before which no thread polls Prefect
        self._closed = False
        self._ticker = threading.Thread(target=self._tick, name="proofflow-slot-blocks", daemon=True)
        self._ticker.start()

    # -- what the model client holds around an attempt ---------------------------

    @contextmanager
    def slot(self) -> Iterator[None]:
        block = self._acquire()
        try:
            yield
        finally:
            self._release(block)

    def held(self) -> int:
        """Slots this process holds from Prefect now (in use or not)."""
        with self._cond:
            return sum(b.size for b in self._blocks)

    def close(self) -> None:
        """Give every block back (a closing process's slots are free at once)."""
        with self._cond:
            self._closed = True
            blocks, self._blocks = self._blocks, []
            self._cond.notify_all()
        for b in blocks:
            self._call_give_back(b)
        if self._own_client and self._client is not None:
            self._client.__exit__(None, None, None)
            self._client = None

    # -- internals ---------------------------------------------------------------

    def _api(self) -> Any:
        with self._count_lock:
            if self._client is None:
                from prefect.client.orchestration import get_client

                client = get_client(sync_client=True)
                client.__enter__()
                self._client = client
            return self._client

    def _acquire(self) -> _Block:
        with self._cond:
            self._waiting += 1
            try:
                while True:
                    if self._closed:
                        raise RuntimeError(f"{self.name}: the slot pool is closed")
                    free = next((b for b in self._blocks if b.in_use < b.size), None)
                    if free is not None:
                        free.in_use += 1
                        free.last_used = time.monotonic()
                        return free
                    now = time.monotonic()
                    if self._fetching or now < self._next_fetch:
                        # Another thread asks Prefect, or the pool backs off: wait for a slot
                        # of ours to come free or for the next poll.
                        self._cond.wait(0.25 if self._fetching else self._next_fetch - now)
                        continue
                    self._fetching = True
                    self._cond.release()
                    try:
                        block = self._fetch()
                    finally:
                        self._cond.acquire()
                        self._fetching = False
                        self._cond.notify_all()
                    self._after_fetch(block)
            finally:
                self._waiting -= 1

    def _after_fetch(self, block: _Block | None) -> None:
        """Keep a new block, or back off (caller holds the lock). The backoff is the pool's,
        not a thread's: with one per thread, each waiting thread took its turn to poll
        from 50 ms again, and a process starved by another's blocks made 135 API calls
        for 60 requests (CI, stop 22)."""
        if block is not None:
            self._blocks.append(block)
            self._poll_s = POLL_FIRST_S
            self._next_fetch = 0.0
            return
        # Every slot is held elsewhere. When some are held here already, more are not urgent.
        wait = max(self._poll_s, POLL_WITH_SLOTS_S) if self._blocks else self._poll_s
        self._next_fetch = time.monotonic() + wait * (0.5 + random.random())
        self._poll_s = min(self._poll_s * 2, POLL_MAX_S)

    def _count(self) -> None:
        with self._count_lock:
            self.api_calls += 1

    def _fetch(self) -> _Block | None:
        """Take the largest of block, block/2, ..., 1 that is free. While starved (the last
        poll found nothing), ask for one slot only: one API call a poll, not log2(block)+1."""
        size = 1 if self._poll_s > POLL_FIRST_S else self.block
        while size >= 1:
            self._count()
            try:
                lease_id = _take(self._api(), self.name, size, self.lease_s)
            except _OverLimit:  # the limit is smaller than a block: never ask for more
                if size == 1:
                    raise LimitMissing(f"Prefect global concurrency limit {self.name!r} has no slots") from None
                self.block = size = size // 2
                continue
            if lease_id is not None:
                return _Block(lease_id, size)
            size //= 2
        return None

    def _release(self, block: _Block) -> None:
        with self._cond:
            block.in_use -= 1
            block.last_used = time.monotonic()
            self._cond.notify()

    def _call_give_back(self, block: _Block) -> None:
        try:
            self._count()
            _give_back(self._api(), block.lease_id)
        except Exception as exc:  # noqa: BLE001 - the lease runs out by itself
            log.warning("%s: giving back %d slot(s) failed (%s); their lease runs out in %.0fs",
                        self.name, block.size, exc, self.lease_s)

    def _tick(self) -> None:
        """Renew the held blocks' leases; give back the idle ones."""
        step = min(1.0, self.lease_s / 6)
        while True:
            time.sleep(step)
            now = time.monotonic()
            with self._cond:
                if self._closed:
                    return
                idle = [b for b in self._blocks if not self._waiting and b.in_use == 0
                        and now - b.last_used >= self.idle_s]
                for b in idle:
                    self._blocks.remove(b)
                due = [b for b in self._blocks if now - b.renewed >= self.lease_s / 3]
            for b in idle:
                self._call_give_back(b)
            for b in due:
                try:
                    self._count()
                    self._api().renew_concurrency_lease(b.lease_id, self.lease_s)
                    b.renewed = now
                except Exception as exc:  # noqa: BLE001 - retried next tick; the lease may run out
                    log.warning("%s: renewing a lease failed: %s", self.name, exc)
