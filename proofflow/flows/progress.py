"""Progress of a running flow, for whoever watches: the CLI's progress bar subscribes
here; the Prefect UI gets a progress artifact from the flow itself."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Progress:
    run_name: str
    done: int
    total: int
    solved: int
    last_problem: str | None = None


Listener = Callable[[Progress], None]
_listeners: list[Listener] = []
_lock = threading.Lock()


def subscribe(listener: Listener) -> Callable[[], None]:
    with _lock:
        _listeners.append(listener)

    def unsubscribe() -> None:
        with _lock:
            if listener in _listeners:
                _listeners.remove(listener)

    return unsubscribe


def publish(progress: Progress) -> None:
    with _lock:
        listeners = list(_listeners)
    for listener in listeners:
        listener(progress)


# --- model requests waiting on a server that does not answer (llm/stall.py Stall) ---
# A separate channel, so Progress listeners keep receiving only Progress.

StallListener = Callable[[Any], None]  # receives proofflow.llm.stall.Stall
_stall_listeners: list[StallListener] = []


def subscribe_stalls(listener: StallListener) -> Callable[[], None]:
    with _lock:
        _stall_listeners.append(listener)

    def unsubscribe() -> None:
        with _lock:
            if listener in _stall_listeners:
                _stall_listeners.remove(listener)

    return unsubscribe


def publish_stall(stall: Any) -> None:
    with _lock:
        listeners = list(_stall_listeners)
    for listener in listeners:
        listener(stall)
