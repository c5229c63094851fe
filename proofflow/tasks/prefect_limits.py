"""Prefect global concurrency limits per model endpoint, over Prefect's HTTP API: a
Dask / Ray worker's model request holds one slot of its base URL's limit, so the bound
holds across worker processes and machines (flows/runners.py creates the limits)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager


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
