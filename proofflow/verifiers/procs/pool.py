"""``Pool``: workers lent one caller at a time, with an acquire deadline, recycling and
replacement. Part of the process-pool primitive; import it from ``proofflow.verifiers.procs``."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Generic, Protocol, TypeVar

from proofflow.verifiers.procs.child import ProcError


class NoWorkerFree(ProcError, TimeoutError):
    """``Pool.acquire`` waited ``waited_s`` and every worker stayed busy."""

    def __init__(self, pool: str, size: int, waited_s: float) -> None:
        super().__init__(f"no {pool} worker became free within {waited_s:.1f}s (pool size {size})")
        self.pool, self.size, self.waited_s = pool, size, waited_s


class Closable(Protocol):
    def close(self) -> None: ...


W = TypeVar("W", bound=Closable)


class Pool(Generic[W]):
    """Up to ``size`` workers made by ``factory``, lent one caller at a time.

    Workers are made lazily (or all at once by ``fill``). A worker released as broken, or
    after ``recycle_after`` uses, is closed and replaced (at once when ``replace_eagerly``,
    so a slow start overlaps with the caller's next work; else on the next acquire).
    """

    def __init__(
        self,
        factory: Callable[[], W],
        size: int,
        *,
        recycle_after: int | None = None,
        name: str = "worker",
        replace_eagerly: bool = False,
    ) -> None:
        if size < 1:
            raise ValueError(f"pool size must be >= 1, got {size}")
        self.name, self.size = name, size
        self._factory = factory
        self._recycle_after = recycle_after
        self._replace_eagerly = replace_eagerly
        self._cond = threading.Condition()
        self._idle: list[W] = []
        self._uses: dict[int, int] = {}  # id(worker) -> uses, for every live worker
        self._live: list[W] = []
        self._starting = 0  # workers being made outside the lock
        self._marked: set[int] = set()  # id(worker): marked broken while lent
        self._closed = False
        self.recycled = 0
        self.last_error: BaseException | None = None  # a failed eager replacement

    def fill(self) -> None:
        """Make every missing worker now (pay start-up before the first caller)."""
        while True:
            with self._cond:
                if len(self._live) + self._starting >= self.size:
                    return
                self._starting += 1
            self._add(self._make())

    def workers(self) -> list[W]:
        """Every live worker, idle or lent (for stats and tests)."""
        with self._cond:
            return list(self._live)

    def _make(self) -> W:
        try:
            return self._factory()
        except BaseException:
            with self._cond:
                self._starting -= 1
                self._cond.notify()
            raise

    def _add(self, w: W) -> None:
        with self._cond:
            self._starting -= 1
            if self._closed:
                w.close()
                return
            self._live.append(w)
            self._uses[id(w)] = 0
            self._idle.append(w)
            self._cond.notify()

    def acquire(self, timeout_s: float | None = None, prefer: Callable[[W], bool] | None = None) -> W:
        """An idle worker (one ``prefer`` likes first), a new one while under ``size``, or
        wait for a release. NoWorkerFree after ``timeout_s`` (None: wait forever)."""
        t0 = time.monotonic()
        deadline = None if timeout_s is None else t0 + timeout_s
        with self._cond:
            while True:
                if self._closed:
                    raise RuntimeError(f"{self.name} pool is closed")
                if self._idle:
                    pick = next((i for i, w in enumerate(self._idle) if prefer(w)), 0) if prefer else 0
                    return self._idle.pop(pick)
                if len(self._live) + self._starting < self.size:
                    self._starting += 1
                    break
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    raise NoWorkerFree(self.name, self.size, time.monotonic() - t0)
                self._cond.wait(left)
        w = self._make()  # outside the lock: starting a process is slow
        with self._cond:
            self._starting -= 1
            self._live.append(w)
            self._uses[id(w)] = 0
        return w

    def release(self, w: W, *, broken: bool = False) -> None:
        """Give a worker back; ``broken`` (it timed out, died, or its state is unknown)
        closes and replaces it, as does reaching ``recycle_after`` uses (and so does
        ``mark_broken`` while it was lent)."""
        with self._cond:
            if id(w) in self._marked:
                self._marked.discard(id(w))
                broken = True
            uses = self._uses.get(id(w), 0) + 1
            retire = broken or self._closed or (self._recycle_after is not None and uses >= self._recycle_after)
            if not retire:
                self._uses[id(w)] = uses
                self._idle.append(w)
                self._cond.notify()
                return
            self._uses.pop(id(w), None)
            if w in self._live:
                self._live.remove(w)
            self.recycled += 0 if broken else 1
            replace = self._replace_eagerly and not self._closed
            if replace:
                self._starting += 1
            self._cond.notify()
        w.close()
        if replace:
            try:
                self._add(self._make())
            except Exception as exc:  # noqa: BLE001 - kept; the next acquire makes one and raises to its caller
                self.last_error = exc

    def mark_broken(self, w: W) -> None:
        """The lent worker's state is unknown (it timed out, died, answered nonsense) though
        the caller goes on without an exception: its release replaces it."""
        with self._cond:
            self._marked.add(id(w))

    @contextmanager
    def lease(self, timeout_s: float | None = None, prefer: Callable[[W], bool] | None = None) -> Iterator[W]:
        """``acquire`` … ``release``, the one way callers borrow a worker. An exception out
        of the block, or ``mark_broken`` inside it, replaces the worker. ``NoWorkerFree``
        (every worker busy for ``timeout_s``) is raised before the block runs; callers
        report it as running out of time (a ``timeout``), never as a crash: nothing failed,
        and the same work may succeed when a worker is free."""
        w = self.acquire(timeout_s, prefer)
        try:
            yield w
        except BaseException:
            self.release(w, broken=True)
            raise
        self.release(w)

    def close(self) -> None:
        """Close every worker, lent ones too (their callers then see ChildDied and
        release them, which closes them again: ``close`` must be idempotent)."""
        with self._cond:
            self._closed = True
            live, self._live, self._idle = self._live, [], []
            self._uses.clear()
            self._cond.notify_all()
        for w in live:
            w.close()

    @property
    def closed(self) -> bool:
        return self._closed
