"""One process at a time works on a run: an OS lock file per run, beside the database.

Why an OS lock and not a lease row with a heartbeat in DuckDB: a run never keeps the
database open (the writer opens it per flush, see db.py), so a heartbeat would need its
own write opens every few seconds, and a killed holder would block the run until its
heartbeat went stale. `flock` is released by the kernel the moment the holder's process
dies (SIGKILL included), so a stale lease is taken over at once, and "is anyone working
on this run?" has an exact answer: try the lock.

The lock file lives in `<db>.work/run-<run_id>.lock` (storage/paths.py) and holds who took it (pid, host,
command, time) as JSON, for the message a second process prints. Files are never
deleted: unlinking a flock'ed file lets two processes lock two different inodes.
Works on local file systems; on NFS, Linux maps flock onto NFS byte-range locks.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from proofflow.processes import pid_alive
from proofflow.storage.errors import StorageError
from proofflow.storage.paths import work_dir
from proofflow.storage.records import utcnow


class RunHeldError(StorageError):
    """Another live process holds the run."""

    def __init__(self, run: str, holder: Holder | None, lock_path: Path):
        who = holder.describe() if holder else "another process"
        super().__init__(
            f"run {run!r} is being worked on by {who} (lock {lock_path}). Wait for it to "
            "finish, stop it, or pass --wait to start when it is done."
        )
        self.run, self.holder, self.lock_path = run, holder, lock_path


@dataclass(frozen=True)
class Holder:
    pid: int
    host: str
    command: str
    since: str

    def describe(self) -> str:
        here = self.host == socket.gethostname()
        state = "" if not here or pid_alive(self.pid) else "; that process is gone, a child of it still holds the lock"
        return f"process {self.pid} on {self.host} ({self.command}), since {self.since} UTC{state}"

    @classmethod
    def of_this_process(cls) -> Holder:
        return cls(pid=os.getpid(), host=socket.gethostname(), command=command_of(os.getpid()),
                   since=utcnow().isoformat(timespec="seconds"))


def lock_path(db_path: str | Path, run_id: str) -> Path:
    return work_dir(db_path) / f"run-{run_id}.lock"


def current_holder(db_path: str | Path, run_id: str) -> Holder | None:
    """Who holds the run now, or None when no live process does (never started, finished,
    or killed: the kernel released its lock)."""
    path = lock_path(db_path, run_id)
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        try:
            # A shared probe: it never blocks a holder, and it fails only while someone
            # holds the exclusive lock.
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                raise
            return _read_holder(path) or Holder(0, "?", "unknown", "?")
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


class RunLease:
    """Hold a run for this process: `acquire()` or raise RunHeldError naming the holder;
    `release()` (or process death) frees it. Also a context manager."""

    def __init__(self, db_path: str | Path, run_id: str, run_name: str | None = None):
        self.path = lock_path(db_path, run_id)
        self.run = run_name or run_id
        self._fd: int | None = None
        self.previous: Holder | None = None  # who held it last (a killed run's process)

    def acquire(self, wait: bool = False, timeout_s: float | None = None,
                poll_s: float = 0.5,
                on_wait: Callable[[Holder | None], None] | None = None) -> RunLease:
        """Take the run. `wait=False`: raise RunHeldError at once if a live process holds
        it. `wait=True`: poll until it is free (or `timeout_s` passes, then raise);
        `on_wait(holder)` is called once when waiting starts, to tell the user."""
        if self._fd is not None:
            return self
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # Non-inheritable (Python's default): a child process that outlives us must
            # not keep the run locked.
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise StorageError(f"cannot create the lock file of run {self.run!r} ({self.path}): "
                               f"{exc.strerror or exc}; the database's folder must be writable") from exc
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        # A `current_holder` probe (`proofflow runs`) holds a shared lock for
        # microseconds; retry briefly before calling the run held.
        probe_grace = time.monotonic() + 0.3
        told = False
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except OSError as exc:
                    if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                        raise
                if time.monotonic() < probe_grace:
                    time.sleep(0.02)
                    continue
                holder = _read_holder(self.path)
                if not wait or (deadline is not None and time.monotonic() >= deadline):
                    raise RunHeldError(self.run, holder, self.path)
                if not told and on_wait is not None:
                    on_wait(holder)
                    told = True
                time.sleep(poll_s)
        except BaseException:
            os.close(fd)
            raise
        self.previous = _read_holder(self.path)
        me = Holder.of_this_process()
        data = json.dumps({"pid": me.pid, "host": me.host, "command": me.command,
                           "since": me.since, "run": self.run}).encode()
        os.ftruncate(fd, 0)
        os.pwrite(fd, data + b"\n", 0)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    def __enter__(self) -> RunLease:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def _read_holder(path: Path) -> Holder | None:
    try:
        d = json.loads(path.read_text(encoding="utf-8"))
        return Holder(pid=int(d["pid"]), host=str(d["host"]), command=str(d["command"]),
                      since=str(d["since"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None  # no file yet, or being rewritten by a new holder this instant


def command_of(pid: int) -> str:
    """A short command line of a process (from /proc where there is one)."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
        args = [a.decode(errors="replace") for a in raw.split(b"\0") if a]
    except OSError:
        args = sys.argv if pid == os.getpid() else []
    if not args:
        return "unknown command"
    args[0] = Path(args[0]).name
    if len(args) > 1 and args[0].startswith("python") and args[1].endswith("proofflow"):
        args = args[1:]
        args[0] = "proofflow"
    text = " ".join(args)
    return text if len(text) <= 120 else text[:117] + "..."
