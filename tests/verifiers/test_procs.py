"""The process-pool primitive (verifiers/procs/) on real child processes."""

from __future__ import annotations

import os
import re
import sys
import threading
import time

import pytest

from proofflow.verifiers.procs import (
    Child,
    ChildDied,
    ChildSpec,
    NoWorkerFree,
    Pool,
    ReadTimeout,
    Rlimits,
    blank_line,
    length_prefixed,
    lines,
    until,
)

# Echo each line back; "sleep" never answers; "spawn" starts a grandchild and prints its pid;
# "rlimit" prints the RLIMIT_AS it runs under; "exit" exits.
_ECHO = r"""
import os, resource, subprocess, sys, time
for line in sys.stdin:
    cmd = line.strip()
    if cmd == "sleep":
        time.sleep(60)
    elif cmd == "exit":
        sys.exit(3)
    elif cmd == "die-loudly":
        sys.stderr.write("noise " * 500 + "\nINTERNAL PANIC: out of memory\n")
        sys.exit(1)
    elif cmd == "spawn":
        p = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        print(p.pid, flush=True)
    elif cmd == "rlimit":
        print(resource.getrlimit(resource.RLIMIT_AS)[0], flush=True)
    else:
        print(cmd, flush=True)
"""


def _child(**kw: object) -> Child:
    return Child(ChildSpec(argv=(sys.executable, "-I", "-c", _ECHO), **kw))  # type: ignore[arg-type]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as f:  # a zombie is dead
        return f.read().split(")")[-1].split()[0] != "Z"


def test_framers() -> None:
    assert lines(b"ab\ncd") == (b"ab", 3)
    assert lines(b"ab") is None
    assert blank_line(b'\n{"a": 1}\n\nrest') == (b'{"a": 1}', 11)
    assert blank_line(b'{"a": 1}\n') is None
    assert length_prefixed(b"\x00\x00\x00\x02hix") == (b"hi", 6)
    assert length_prefixed(b"\x00\x00\x00\x05hi") is None
    assert until(re.compile(rb"</p>"))(b"x<p>1</p>y") == (b"x<p>1</p>", 9)


def test_request_timeout_kill_respawn_and_rlimits() -> None:
    c = _child(limits=Rlimits(memory_mb=512))
    c.start()
    assert c.request(b"hello\n", lines, time.monotonic() + 10) == b"hello"
    assert int(c.request(b"rlimit\n", lines, time.monotonic() + 10)) == 512 * 1024 * 1024
    grandchild = int(c.request(b"spawn\n", lines, time.monotonic() + 10))
    t0 = time.monotonic()
    with pytest.raises(ReadTimeout):
        c.request(b"sleep\n", lines, time.monotonic() + 0.3)
    assert time.monotonic() - t0 < 2
    c.kill()  # the whole group: the grandchild dies with it
    deadline = time.monotonic() + 5
    while _alive(grandchild) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(grandchild)
    assert c.ensure_started() and c.spawns == 2
    assert c.request(b"again\n", lines, time.monotonic() + 10) == b"again"
    with pytest.raises(ChildDied) as info:
        c.request(b"exit\n", lines, time.monotonic() + 10)
    assert info.value.returncode == 3
    c.kill()


def test_kept_stderr_says_why_a_child_died() -> None:
    c = _child(stderr="keep")
    c.start()
    assert c.request(b"hi\n", lines, time.monotonic() + 10) == b"hi"
    with pytest.raises(ChildDied) as info:
        c.request(b"die-loudly\n", lines, time.monotonic() + 10)
    assert info.value.returncode == 1
    # Only the end of a long stderr, and it is in the message too.
    assert info.value.stderr.endswith("INTERNAL PANIC: out of memory") and len(info.value.stderr) <= 600
    assert "out of memory" in str(info.value)
    c.kill()
    assert c.stderr_tail() == ""  # the file goes with the child
    quiet = _child()  # default: stderr to /dev/null, nothing kept
    quiet.start()
    with pytest.raises(ChildDied) as info:
        quiet.request(b"die-loudly\n", lines, time.monotonic() + 10)
    assert info.value.stderr == ""
    quiet.kill()


class _W:
    made = 0

    def __init__(self) -> None:
        _W.made += 1
        self.n = _W.made
        self.closed = False

    def close(self) -> None:
        self.closed = True


def test_pool_acquire_deadline_recycle_and_broken() -> None:
    pool: Pool[_W] = Pool(_W, size=2, recycle_after=3, name="test")
    a = pool.acquire(1)
    b = pool.acquire(1)
    t0 = time.monotonic()
    with pytest.raises(NoWorkerFree) as info:
        pool.acquire(0.3)
    assert 0.25 < time.monotonic() - t0 < 2 and info.value.pool == "test"
    # A release from another thread wakes a waiter.
    threading.Timer(0.2, pool.release, args=(a,)).start()
    assert pool.acquire(5) is a
    pool.release(b, broken=True)  # broken: closed and replaced
    assert b.closed and b not in pool.workers()
    pool.release(a)  # a: 2 uses
    assert pool.acquire(1, prefer=lambda w: w is a) is a
    pool.release(a)  # 3rd use: recycled
    assert a.closed and pool.recycled == 1
    with pytest.raises(RuntimeError), pool.lease(1) as w:
        raise RuntimeError("boom")
    assert w.closed
    pool.close()
    assert all(w.closed for w in pool.workers()) and not pool.workers()


def test_pool_close_closes_lent_workers() -> None:
    pool: Pool[_W] = Pool(_W, size=1)
    pool.fill()
    w = pool.acquire(1)
    pool.close()
    assert w.closed
    pool.release(w)  # a late release after close is harmless
    with pytest.raises(RuntimeError):
        pool.acquire(1)


def test_lease_mark_broken_replaces_without_an_exception() -> None:
    pool: Pool[_W] = Pool(_W, size=1, name="marks")
    with pool.lease(1) as w:
        pool.mark_broken(w)  # e.g. a check that timed out and returned its verdict
    assert w.closed and w not in pool.workers()
    with pool.lease(1) as fresh:
        pass
    assert fresh is not w and not fresh.closed  # an unmarked lease keeps its worker
    with pool.lease(1) as again:
        assert again is fresh
    with pool.lease(1), pytest.raises(NoWorkerFree):
        pool.acquire(0.1)  # the one worker is lent: the deadline passes
    pool.close()


_HOST = r"""
import sys, time
from proofflow.verifiers.procs import Child, ChildSpec, lines
child = Child(ChildSpec(argv=(sys.executable, "-I", "-c", sys.argv[1]), die_with_host=sys.argv[2] == "1"))
child.start()
grandchild = child.request(b"spawn\n", lines, time.monotonic() + 30).decode()
print(child.request(b"pid\n", lines, time.monotonic() + 30).decode(), grandchild, flush=True)
time.sleep(120)
"""


def _host_killed(die_with_host: bool) -> list[int]:
    """A host process starts a child (which starts a grandchild), then is SIGKILLed: the
    pids of the child and the grandchild still alive 5 s later."""
    import signal
    import subprocess

    echo = _ECHO.replace('elif cmd == "rlimit"',
                         'elif cmd == "pid":\n        print(os.getpid(), flush=True)\n    elif cmd == "rlimit"')
    host = subprocess.Popen([sys.executable, "-c", _HOST, echo, "1" if die_with_host else "0"],
                            stdout=subprocess.PIPE, text=True)
    assert host.stdout is not None
    pids = [int(p) for p in host.stdout.readline().split()]
    assert len(pids) == 2 and all(_alive(p) for p in pids)
    os.kill(host.pid, signal.SIGKILL)
    host.wait()
    deadline = time.monotonic() + 5
    while any(_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    left = [p for p in pids if _alive(p)]
    for p in left:
        os.kill(p, signal.SIGKILL)
    return left


def test_a_child_that_must_die_with_its_host_does_when_the_host_is_sigkilled() -> None:
    # The wasm Lean programs poll a request directory and never notice a dead host: a
    # SIGKILLed `proofflow prove` left them running (2-3 GB each). die_with_host: a
    # watchdog takes the child's process group down once the host is gone.
    assert _host_killed(die_with_host=True) == []
    # Without it, what the child started outlives the host (this child reads stdin and
    # ends at its EOF; a Lean program polling files would have stayed too).
    assert _host_killed(die_with_host=False) != []


def test_the_watchdog_keeps_the_childs_channel_exit_code_and_limits() -> None:
    c = _child(limits=Rlimits(memory_mb=512), die_with_host=True)
    c.start()
    assert c.request(b"hello\n", lines, time.monotonic() + 10) == b"hello"
    assert int(c.request(b"rlimit\n", lines, time.monotonic() + 10)) == 512 * 1024 * 1024
    with pytest.raises(ChildDied) as info:
        c.request(b"exit\n", lines, time.monotonic() + 10)
    assert info.value.returncode == 3
    c.kill()
