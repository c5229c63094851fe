"""Children and their framed channels: rlimits, process groups, deadline reads by poll.
Part of the process-pool primitive; import it from ``proofflow.verifiers.procs``."""

from __future__ import annotations

import os
import re
import resource
import select
import signal
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import IO

_MB = 1024 * 1024


class ProcError(Exception):
    """Base of the errors raised here."""


class ChildDied(ProcError, EOFError):
    """The child closed its channel or exited (``tail``: the last bytes it sent;
    ``stderr``: the end of what it wrote to stderr, when its spec keeps stderr)."""

    def __init__(self, message: str, returncode: int | None = None, tail: bytes = b"", stderr: str = "") -> None:
        super().__init__(f"{message}: {stderr}" if stderr else message)
        self.returncode = returncode
        self.tail = tail
        self.stderr = stderr


class ReadTimeout(ProcError, TimeoutError):
    """No complete frame before the deadline (the child is still running: kill it)."""


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

    def wrap(self, argv: Sequence[str], watch_parent: int | None = None) -> list[str]:
        """``argv`` run under these limits. Why not ``preexec_fn``: it runs Python in the
        forked child of a threaded host (the flows call checkers from worker threads) and
        can deadlock there; a small exec wrapper sets the limits and execs ``argv``.
        ``watch_parent``: the wrapper stays as a watchdog instead (see ``_WATCHDOG``)."""
        pairs = self.pairs()
        spec = ",".join(f"{res}:{val}" for res, val in pairs)
        if watch_parent is not None:
            return [sys.executable, "-I", "-S", "-c", _WATCHDOG, str(watch_parent), spec, *argv]
        if not pairs:
            return list(argv)
        return [sys.executable, "-I", "-S", "-c", _WRAPPER, spec, *argv]


# Sets the rlimits named in argv[1] ("resource:value,...") and execs argv[2:].
_WRAPPER = (
    "import os, resource, sys\n"
    "for item in sys.argv[1].split(','):\n"
    "    res, val = map(int, item.split(':'))\n"
    "    resource.setrlimit(res, (val, val))\n"
    "os.execvp(sys.argv[2], sys.argv[2:])\n"
)


# The watchdog for a child that would not notice its host die (the wasm Lean programs
# poll a request directory for their next request; a SIGKILLed host left them polling
# forever, 2-3 GB each). argv: [host pid, "resource:value,...", command...]. It forks the
# command (limits set there, not on itself), lets go of the channel's pipes (so the host
# sees EOF the moment the command exits); a thread checks every 0.5 s whether its parent
# is still the host, and if not SIGKILLs its process group (the command and whatever it
# started). When the command exits (also because the host's death closed its stdin), what
# it left in the group is SIGKILLed and the watchdog exits as the command did. Why not
# PR_SET_PDEATHSIG: it fires when the host *thread* that started the child ends, and
# checkers are started from task-runner threads.
_WATCHDOG = (
    "import os, resource, signal, sys, threading, time\n"
    "host = int(sys.argv[1])\n"
    "pid = os.fork()\n"
    "if pid == 0:\n"
    "    for item in filter(None, sys.argv[2].split(',')):\n"
    "        res, val = map(int, item.split(':'))\n"
    "        resource.setrlimit(res, (val, val))\n"
    "    os.execvp(sys.argv[3], sys.argv[3:])\n"
    "null = os.open(os.devnull, os.O_RDWR)\n"
    "for fd in (0, 1, 2):\n"
    "    os.dup2(null, fd)\n"
    "def watch():\n"
    "    while os.getppid() == host:\n"
    "        time.sleep(0.5)\n"
    "    os.killpg(0, signal.SIGKILL)\n"
    "threading.Thread(target=watch, daemon=True).start()\n"
    "_, status = os.waitpid(pid, 0)\n"
    "me, group = os.getpid(), os.getpgrp()\n"
    "for entry in os.listdir('/proc'):\n"
    "    try:\n"
    "        fields = open(f'/proc/{entry}/stat').read().rsplit(')', 1)[1].split()\n"
    "        if entry.isdigit() and int(entry) != me and int(fields[2]) == group:\n"
    "            os.kill(int(entry), signal.SIGKILL)\n"
    "    except (OSError, ValueError, IndexError):\n"
    "        pass\n"
    "if os.WIFSIGNALED(status):\n"
    "    signal.signal(os.WTERMSIG(status), signal.SIG_DFL)\n"
    "    os.kill(os.getpid(), os.WTERMSIG(status))\n"
    "os._exit(os.waitstatus_to_exitcode(status))\n"
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
    # "devnull" | "stdout" (merged into the channel, e.g. coqtop) | "keep" (to a private
    # temporary file, whose end a ChildDied carries: why a process died, e.g. out of memory)
    stderr: str = "devnull"
    pass_fds: tuple[int, ...] = ()
    # Killed when the host process dies, also by SIGKILL (a watchdog, see _WATCHDOG): for
    # children that would not notice by themselves (they never read a closed stdin).
    die_with_host: bool = False


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
        self._stderr_file: IO[bytes] | None = None

    # -- lifecycle
    def start(self) -> None:
        """(Re)spawn: kill a previous process group, start a fresh child."""
        self.kill()
        spec = self.spec
        pipe = spec.channel == "pipe"
        stderr: int | IO[bytes] = subprocess.DEVNULL
        if spec.stderr == "stdout" and pipe:
            stderr = subprocess.STDOUT
        elif spec.stderr == "keep":
            # Closed in kill(), not here: it lives as long as the child.
            self._stderr_file = stderr = tempfile.TemporaryFile(prefix="proofflow-stderr-")  # noqa: SIM115
        self.proc = subprocess.Popen(
            spec.limits.wrap(spec.argv, watch_parent=os.getpid() if spec.die_with_host else None),
            stdin=subprocess.PIPE if pipe else subprocess.DEVNULL,
            stdout=subprocess.PIPE if pipe else subprocess.DEVNULL,
            stderr=stderr,
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
        if self._stderr_file is not None:
            self._stderr_file.close()
            self._stderr_file = None

    def stderr_tail(self, limit: int = 600) -> str:
        """The last ``limit`` bytes the child wrote to stderr ("" unless the spec keeps it)."""
        f = self._stderr_file
        if f is None:
            return ""
        try:
            size = os.fstat(f.fileno()).st_size
            data = os.pread(f.fileno(), limit, max(0, size - limit))
        except OSError:
            return ""
        return data.decode("utf-8", "replace").strip()

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
                raise ChildDied(f"child exited (code {code})", code, self._buf[-500:], self.stderr_tail())
            self._buf += chunk

    def request(self, data: bytes, framer: Framer, deadline: float) -> bytes:
        """send + read_frame."""
        self.send(data)
        return self.read_frame(framer, deadline)

    def pending(self) -> bytes:
        """Bytes read but not yet framed (for error messages)."""
        return self._buf
