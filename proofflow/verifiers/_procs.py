"""The one process-pool primitive every verifier runs its child processes on.

Three pieces, each usable alone:

- ``Child``: one child process started with rlimits (``Rlimits``) in its own process
  group, with a byte channel to it (its stdin/stdout pipes, or a socket passed to it).
  ``request``/``read_frame`` write a request and read one *framed* answer before a
  deadline; the wait uses ``poll`` (``select.select`` fails once a descriptor number
  passes 1024, which a long run with many pools and sockets reaches). ``kill`` SIGKILLs
  the whole group, ``start`` (re)spawns.
- framing functions (``Framer``): ``lines`` (one JSON line), ``blank_line`` (a JSON
  object ended by an empty line, the Lean REPL's), ``length_prefixed`` (4-byte big-endian
  length + body) and ``until(regex)`` (Coq's ``<prompt>...</prompt>``).
- ``Pool``: lends workers (anything with ``close()``) one caller at a time, thread-safe.
  ``acquire`` waits at most ``timeout_s`` and raises ``NoWorkerFree`` when none frees up;
  it can prefer a worker (e.g. one whose header is loaded). ``release`` counts the use and
  recycles the worker after ``recycle_after`` uses, or at once when the caller says it is
  broken (timed out, died); a replacement is made by the factory.

Usage (a pool of warm JSON-line workers)::

    from proofflow.verifiers._procs import Child, ChildSpec, Pool, Rlimits, lines

    class Worker:
        def __init__(self) -> None:
            self.child = Child(ChildSpec(argv=("python3", "-I", "worker.py"),
                                         limits=Rlimits(memory_mb=2048)))

        def ask(self, req: dict, timeout_s: float) -> dict:
            self.child.ensure_started()         # respawns a dead child
            deadline = time.monotonic() + timeout_s
            raw = self.child.request(json.dumps(req).encode() + b"\\n", lines, deadline)
            return json.loads(raw)              # ReadTimeout / ChildDied propagate

        def close(self) -> None:
            self.child.kill()

    pool: Pool[Worker] = Pool(Worker, size=4, recycle_after=100, name="answer")
    with pool.lease(timeout_s=30) as w:         # NoWorkerFree after 30 s
        answer = w.ask({"x": 1}, timeout_s=5)   # an exception marks w broken: replaced
    pool.close()

The pool never looks inside a worker; what "ready", "header" or "respawn" mean is the
worker's business (Coq keeps its prompt state, the sandbox its zygote handshake).
"""

from __future__ import annotations

import os
import re
import resource
import select
import signal
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar

__all__ = [
    "Child",
    "ChildDied",
    "ChildSpec",
    "Framer",
    "NoWorkerFree",
    "Pool",
    "ProcError",
    "ReadTimeout",
    "Rlimits",
    "blank_line",
    "kill_group",
    "length_prefixed",
    "lines",
    "until",
]

_MB = 1024 * 1024


class ProcError(Exception):
    """Base of the errors raised here."""


class ChildDied(ProcError, EOFError):
    """The child closed its channel or exited (``tail``: the last bytes it sent)."""

    def __init__(self, message: str, returncode: int | None = None, tail: bytes = b"") -> None:
        super().__init__(message)
        self.returncode = returncode
        self.tail = tail


class ReadTimeout(ProcError, TimeoutError):
    """No complete frame before the deadline (the child is still running: kill it)."""


class NoWorkerFree(ProcError, TimeoutError):
    """``Pool.acquire`` waited ``waited_s`` and every worker stayed busy."""

    def __init__(self, pool: str, size: int, waited_s: float) -> None:
        super().__init__(f"no {pool} worker became free within {waited_s:.1f}s (pool size {size})")
        self.pool, self.size, self.waited_s = pool, size, waited_s


# ------------------------------------------------------------------------------ rlimits


@dataclass(frozen=True)
class Rlimits:
    """Resource limits set in the child before it execs. None = inherit."""

    memory_mb: int | None = None  # RLIMIT_AS: runaway allocation fails in the child, not the host
    cpu_s: int | None = None  # RLIMIT_CPU
    nofile: int | None = None  # RLIMIT_NOFILE
    nproc: int | None = None  # RLIMIT_NPROC (per uid)
    core_bytes: int | None = 0  # RLIMIT_CORE: no core dumps of untrusted input by default

    def pairs(self) -> list[tuple[int, int]]:
        out: list[tuple[int, int]] = []
        for res, val in (
            (resource.RLIMIT_AS, None if self.memory_mb is None else self.memory_mb * _MB),
            (resource.RLIMIT_CPU, self.cpu_s),
            (resource.RLIMIT_NOFILE, self.nofile),
            (resource.RLIMIT_NPROC, self.nproc),
            (resource.RLIMIT_CORE, self.core_bytes),
        ):
            if val is not None:
                out.append((res, val))
        return out

    def wrap(self, argv: Sequence[str]) -> list[str]:
        """``argv`` run under these limits. Why not ``preexec_fn``: it runs Python in the
        forked child of a threaded host (the flows call checkers from worker threads) and
        can deadlock there; a small exec wrapper sets the limits and execs ``argv``."""
        pairs = self.pairs()
        if not pairs:
            return list(argv)
        spec = ",".join(f"{res}:{val}" for res, val in pairs)
        return [sys.executable, "-I", "-S", "-c", _WRAPPER, spec, *argv]


# Sets the rlimits named in argv[1] ("resource:value,...") and execs argv[2:].
_WRAPPER = (
    "import os, resource, sys\n"
    "for item in sys.argv[1].split(','):\n"
    "    res, val = map(int, item.split(':'))\n"
    "    resource.setrlimit(res, (val, val))\n"
    "os.execvp(sys.argv[2], sys.argv[2:])\n"
)


def kill_group(proc: subprocess.Popen[bytes], wait_s: float = 5.0) -> None:
    """SIGKILL the child's whole process group (it was started with start_new_session,
    so anything it spawned dies too) and reap it, bounded in time."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        proc.wait(timeout=wait_s)
    except subprocess.TimeoutExpired:
        pass


# ------------------------------------------------------------------------------ framing

# A framer looks at the bytes read so far: (frame, bytes consumed) once a whole frame is
# there, else None.
Framer = Callable[[bytes], tuple[bytes, int] | None]


def lines(buf: bytes) -> tuple[bytes, int] | None:
    """One line, without its newline."""
    i = buf.find(b"\n")
    return None if i < 0 else (buf[:i], i + 1)


def blank_line(buf: bytes) -> tuple[bytes, int] | None:
    """Text up to the first empty line after some non-blank text (leading newlines skipped)."""
    start = len(buf) - len(buf.lstrip(b"\r\n"))
    cut = buf.find(b"\n\n", start)
    return None if cut < 0 else (buf[start:cut], cut + 2)


def length_prefixed(buf: bytes) -> tuple[bytes, int] | None:
    """A 4-byte big-endian length, then that many bytes."""
    if len(buf) < 4:
        return None
    n = struct.unpack(">I", buf[:4])[0]
    return None if len(buf) < 4 + n else (buf[4 : 4 + n], 4 + n)


def until(pattern: re.Pattern[bytes]) -> Framer:
    """Everything up to and including the first match of ``pattern``."""

    def framer(buf: bytes) -> tuple[bytes, int] | None:
        m = pattern.search(buf)
        return None if m is None else (buf[: m.end()], m.end())

    return framer


# -------------------------------------------------------------------------------- child


@dataclass(frozen=True)
class ChildSpec:
    argv: Sequence[str]
    limits: Rlimits = field(default_factory=Rlimits)
    cwd: str | None = None
    env: Mapping[str, str] | None = None  # None: inherit the host's environment
    # "pipe": talk over stdin/stdout. "socket": the caller passes its end in ``pass_fds``
    # and gives the host end to ``Child(spec, channel_fd=...)``; stdin/stdout are /dev/null.
    channel: str = "pipe"
    stderr: str = "devnull"  # "devnull" | "stdout" (merged into the channel, e.g. coqtop)
    pass_fds: tuple[int, ...] = ()


class Child:
    """One child process and its framed channel. Not thread-safe: lend it to one caller."""

    def __init__(self, spec: ChildSpec, channel_fd: int | None = None) -> None:
        self.spec = spec
        self.proc: subprocess.Popen[bytes] | None = None
        self.spawns = 0
        self._buf = b""
        self._fd_out: int | None = channel_fd  # host end of a socket channel
        self._rfd = -1
        self._wfd = -1
        self._poll: select.poll | None = None

    # -- lifecycle
    def start(self) -> None:
        """(Re)spawn: kill a previous process group, start a fresh child."""
        self.kill()
        spec = self.spec
        pipe = spec.channel == "pipe"
        self.proc = subprocess.Popen(
            spec.limits.wrap(spec.argv),
            stdin=subprocess.PIPE if pipe else subprocess.DEVNULL,
            stdout=subprocess.PIPE if pipe else subprocess.DEVNULL,
            stderr=subprocess.STDOUT if spec.stderr == "stdout" and pipe else subprocess.DEVNULL,
            cwd=spec.cwd,
            env=dict(spec.env) if spec.env is not None else None,
            pass_fds=spec.pass_fds,
            start_new_session=True,  # its own process group: kill() takes everything it spawned
        )
        if pipe:
            assert self.proc.stdin is not None and self.proc.stdout is not None
            self._rfd, self._wfd = self.proc.stdout.fileno(), self.proc.stdin.fileno()
        else:
            if self._fd_out is None:
                raise ValueError("a socket channel needs channel_fd (the host end)")
            self._rfd = self._wfd = self._fd_out
        self._poll = select.poll()
        self._poll.register(self._rfd, select.POLLIN)
        self._buf = b""
        self.spawns += 1

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def ensure_started(self) -> bool:
        """Start the child if it is not running; True when it was (re)started."""
        if self.alive():
            return False
        self.start()
        return True

    def kill(self) -> None:
        """SIGKILL the whole process group and reap it. Idempotent."""
        if self.proc is not None:
            kill_group(self.proc)
            for pipe in (self.proc.stdin, self.proc.stdout):
                if pipe is not None:
                    pipe.close()
            self.proc = None
        self._poll = None

    @property
    def pid(self) -> int | None:
        return None if self.proc is None else self.proc.pid

    # -- channel
    def send(self, data: bytes) -> None:
        """Write all of ``data`` (blocking). ChildDied if the channel is closed."""
        if self.proc is None:
            raise ChildDied("child not started")
        view = memoryview(data)
        try:
            while view:
                n = os.write(self._wfd, view)
                view = view[n:]
        except OSError as exc:  # EPIPE, ECONNRESET, EBADF
            raise ChildDied(f"channel closed: {exc}", self.proc.poll(), self._buf[-500:]) from None

    def read_frame(self, framer: Framer, deadline: float) -> bytes:
        """The next frame, read before ``deadline`` (time.monotonic()).

        ReadTimeout when none is complete in time (the child keeps running: callers
        usually ``kill()`` it); ChildDied when the child closes its end first.
        """
        while True:
            got = framer(self._buf)
            if got is not None:
                frame, used = got
                self._buf = self._buf[used:]
                return frame
            if self.proc is None or self._poll is None:
                raise ChildDied("child not started")
            left = deadline - time.monotonic()
            if left <= 0:
                raise ReadTimeout(f"no answer within the deadline (pid {self.proc.pid})")
            # poll's timeout is in ms; round up so a 0.4 ms remainder is not a busy loop.
            if not self._poll.poll(max(1, int(left * 1000) + 1)):
                continue
            try:
                chunk = os.read(self._rfd, 1 << 16)
            except OSError as exc:
                raise ChildDied(f"channel read failed: {exc}", self.proc.poll(), self._buf[-500:]) from None
            if not chunk:
                try:  # EOF: give the exit status a moment to be there for the message
                    code = self.proc.wait(timeout=0.2)
                except subprocess.TimeoutExpired:
                    code = None
                raise ChildDied(f"child exited (code {code})", code, self._buf[-500:])
            self._buf += chunk

    def request(self, data: bytes, framer: Framer, deadline: float) -> bytes:
        """send + read_frame."""
        self.send(data)
        return self.read_frame(framer, deadline)

    def pending(self) -> bytes:
        """Bytes read but not yet framed (for error messages)."""
        return self._buf


# --------------------------------------------------------------------------------- pool


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
        closes and replaces it, as does reaching ``recycle_after`` uses."""
        with self._cond:
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

    @contextmanager
    def lease(self, timeout_s: float | None = None, prefer: Callable[[W], bool] | None = None) -> Iterator[W]:
        """``acquire`` … ``release``; an exception out of the block marks the worker broken."""
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
