"""A frozen model server must not be silent: the watcher that notices requests waiting
on a base URL that has stopped answering, and the `Stall` event it reports
(llm/client.py starts one per client on its first request; the CLI shows the events
above its progress bar, docs/configuration.md)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx

from proofflow.config import EndpointConfig

log = logging.getLogger("proofflow.llm.client")  # the client's logger: same lines, same place


@dataclass(frozen=True)
class Stall:
    """Requests are waiting on a base URL that does not answer a health probe
    (`answering` False), or it answers again (`answering` True, sent once on recovery)."""

    url: str
    waiting: int
    oldest_s: float
    answering: bool

    def message(self) -> str:
        if self.answering:
            return f"{self.url} answers again"
        return (f"{self.waiting} request(s) waiting on {self.url} for up to {self.oldest_s:.0f}s; "
                "the server does not answer (stopped or overloaded?)")



class StallWatcher:
    """Once a second: a base URL whose oldest request has waited `stall_after_s` gets a
    health probe (GET /models, short timeout). A server that answers it is only slow
    (long generations are normal); one that does not (frozen, SIGSTOPped, wedged) is
    reported through `on_stall` at once and every `stall_after_s` while it lasts, and
    once more when it answers again. Why a probe and not a shorter request timeout: a
    512-token generation on a loaded server legitimately takes minutes."""

    def __init__(
        self,
        endpoint: EndpointConfig,
        waiting: Callable[[], dict[str, tuple[int, float]]],
        on_stall: Callable[[Stall], None] | None,
    ):
        self.endpoint = endpoint
        self.waiting = waiting  # url -> (requests in flight, age of the oldest), from the client
        self.on_stall = on_stall
        self._stop = threading.Event()
        self._reported: dict[str, float] = {}  # url -> when last reported as stalled
        self._thread = threading.Thread(target=self._run, name="proofflow-llm-stall", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def not_answering(self, url: str) -> bool:
        """Whether `url` is reported as not answering its health probe now (the client
        declares such a URL frozen when a request gives up on it)."""
        return url in self._reported

    def _run(self) -> None:
        ep = self.endpoint
        while not self._stop.wait(1.0):
            waiting = self.waiting()
            for url in ep.base_urls:
                count, oldest = waiting.get(url, (0, 0.0))
                stalled = count > 0 and oldest >= ep.stall_after_s
                if not stalled and url not in self._reported:
                    continue
                answering = _probe(url, ep.api_key, timeout_s=min(2.0, ep.stall_after_s))
                if not answering and not stalled:
                    continue  # reported already, and nothing waits on it now
                self._report(url, count, oldest, answering)

    def _report(self, url: str, count: int, oldest: float, answering: bool) -> None:
        now = time.monotonic()
        last = self._reported.get(url)
        if answering:
            if last is None:
                return
            del self._reported[url]
        elif last is not None and now - last < self.endpoint.stall_after_s:
            return
        else:
            self._reported[url] = now
        stall = Stall(url, count, oldest, answering)
        (log.info if answering else log.warning)("%s", stall.message())
        if self.on_stall is not None:
            try:
                self.on_stall(stall)
            except Exception:  # noqa: BLE001 - a broken listener must not stop the watch
                log.debug("stall listener failed", exc_info=True)


def _probe(url: str, api_key: str, timeout_s: float) -> bool:
    try:
        r = httpx.get(f"{url}/models", headers={"Authorization": f"Bearer {api_key}"}, timeout=timeout_s)
        return r.status_code < 500
    except httpx.HTTPError:
        return False
