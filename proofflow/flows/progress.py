"""Progress of a running flow, for whoever watches: the CLI's progress bar subscribes
here; the Prefect UI gets a progress artifact from the flow itself."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Progress:
    run_name: str
    done: int
    total: int
    solved: int
    last_problem: str | None = None


class Channel(Generic[T]):
    """Listeners of one kind of event, called in the publishing thread (thread-safe)."""

    def __init__(self) -> None:
        self._listeners: list[Callable[[T], None]] = []
        self._lock = threading.Lock()

    def subscribe(self, listener: Callable[[T], None]) -> Callable[[], None]:
        with self._lock:
            self._listeners.append(listener)

        def unsubscribe() -> None:
            with self._lock:
                if listener in self._listeners:
                    self._listeners.remove(listener)

        return unsubscribe

    def publish(self, event: T) -> None:
        with self._lock:
            listeners = list(self._listeners)
        for listener in listeners:
            listener(event)


_progress: Channel[Progress] = Channel()
subscribe = _progress.subscribe
publish = _progress.publish

# --- model requests waiting on a server that does not answer (llm/stall.py Stall) ---
# A separate channel, so Progress listeners keep receiving only Progress.

_stalls: Channel[Any] = Channel()  # events are proofflow.llm.stall.Stall
subscribe_stalls = _stalls.subscribe
publish_stall = _stalls.publish
