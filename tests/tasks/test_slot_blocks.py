"""SlotBlocks against a stand-in for Prefect's concurrency-lease API (the real server is
in tests/flows/test_model_calls_local.py; here a stand-in makes the starved case exact:
every slot is held elsewhere for a set time)."""

from __future__ import annotations

import threading
import time

import httpx

from proofflow.tasks.prefect_limits import POLL_MAX_S, SlotBlocks


class HeldElsewhere:
    """Prefect's lease calls for a limit whose slots another process holds until
    `free_at`; after that it grants any take. Counts the calls by kind."""

    api_url = "http://stand-in/api"

    def __init__(self, free_at: float) -> None:
        self.free_at = free_at
        self.takes: list[int] = []
        self.lock = threading.Lock()

    def increment_concurrency_slots_with_lease(self, names: list[str], slots: int, mode: str,
                                               lease_duration: float) -> httpx.Response:
        with self.lock:
            self.takes.append(slots)
        request = httpx.Request("POST", self.api_url)
        if time.monotonic() < self.free_at:
            response = httpx.Response(423, request=request)
            raise httpx.HTTPStatusError("locked", request=request, response=response)
        return httpx.Response(200, json={"limits": [{"name": names[0]}], "lease_id": f"lease-{len(self.takes)}"},
                              request=request)

    def release_concurrency_slots_with_lease(self, lease_id: str) -> None:
        pass

    def renew_concurrency_lease(self, lease_id: str, lease_duration: float) -> None:
        pass


def _hold_slots(pool: SlotBlocks, threads: int) -> list[float]:
    waited: list[float] = []

    def one() -> None:
        start = time.monotonic()
        with pool.slot():
            waited.append(time.monotonic() - start)

    workers = [threading.Thread(target=one) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=30)
    return waited


def test_a_starved_pool_polls_on_one_clock_not_once_per_waiting_thread() -> None:
    """Six threads wait 4 s while every slot is held elsewhere. Each thread polling on its
    own clock made ~2 API calls a poll from 50 ms again per thread (135 calls for 60
    requests in CI); the pool polls on one backoff, one slot a time."""
    starved_s = 4.0
    api = HeldElsewhere(free_at=time.monotonic() + starved_s)
    pool = SlotBlocks("http://model:8000/v1", block=8, client=api)
    try:
        waited = _hold_slots(pool, threads=6)
    finally:
        pool.close()
    assert len(waited) == 6
    assert min(waited) >= starved_s - 0.1  # nobody got a slot that was not free
    assert max(waited) <= starved_s + 1.5 * POLL_MAX_S + 0.5  # and the poll found it soon after
    # Backoff 0.05, 0.1, ..., 2 s (jittered x0.5-1.5): at most 8 polls in 4 s, the first one
    # 4 calls (8, 4, 2, 1) and the others one each, then a take or two once slots are free.
    assert len(api.takes) <= 16, api.takes
    # The first poll asks for 8, 4, 2, 1 (all or nothing); then one slot a poll until it is
    # granted (the slots are held for no time here, so that one may serve every thread; a
    # take after a grant asks for a whole block again).
    assert api.takes[:4] == [8, 4, 2, 1] and set(api.takes[4:-1]) == {1}, api.takes


def test_an_unstarved_pool_takes_whole_blocks() -> None:
    api = HeldElsewhere(free_at=0.0)
    pool = SlotBlocks("http://model:8000/v1", block=4, client=api)
    try:
        waited = _hold_slots(pool, threads=4)
        held = pool.held()
    finally:
        pool.close()
    assert len(waited) == 4
    assert api.takes[0] == 4 and held % 4 == 0, (api.takes, held)
