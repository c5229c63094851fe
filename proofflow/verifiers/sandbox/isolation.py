"""The zygote's one-time isolation, and the clone into a PID namespace it uses per run.

Isolation: new network/mount/IPC/UTS namespaces, every mount read-only, a size-capped
tmpfs for scratch, and the interpreter exposed to unprivileged uids without exposing its
neighbours. Standard library only, loaded by path by
``zygote.py`` (which says what each execution adds on top)."""

from __future__ import annotations

import ctypes
import importlib
import os
import signal
import stat
import sys

CLONE_NEWNS = 0x00020000
CLONE_NEWPID = 0x20000000
SYS_CLONE = {"x86_64": 56, "aarch64": 220}
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_REMOUNT = 32
MS_BIND = 4096
MS_REC = 16384
MS_PRIVATE = 1 << 18

_libc = ctypes.CDLL(None, use_errno=True)


def _check(ret: int, what: str) -> None:
    if ret != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _blocked_ancestor(path: str) -> str | None:
    """Topmost ancestor of ``path`` that others cannot traverse (e.g. /root, mode 0700)."""
    parts = os.path.abspath(path).split("/")[1:]
    cur = ""
    for part in parts[:-1]:
        cur += "/" + part
        if not os.stat(cur).st_mode & stat.S_IXOTH:
            return cur
    return None


def _expose(paths: list[str], hold_root: str) -> None:
    """Make ``paths`` reachable for an unprivileged uid without exposing their neighbours.

    The interpreter may live under a private directory (pyenv in /root, mode 0700). For each
    such directory A, the needed paths are bind-mounted aside, a fresh 0755 tmpfs covers A
    (hiding the rest of it, e.g. /root/.ssh), and the paths are bind-mounted back in place.
    """
    groups: dict[str, list[str]] = {}
    for p in paths:
        a = _blocked_ancestor(p)
        if a is not None and not any(p != q and p.startswith(q + "/") for q in paths):
            groups.setdefault(a, []).append(p)
    for n, (anc, ps) in enumerate(sorted(groups.items())):
        holds = []
        for i, p in enumerate(ps):
            h = os.path.join(hold_root, f"hold{n}_{i}")
            os.mkdir(h)
            _check(_libc.mount(p.encode(), h.encode(), None, MS_BIND | MS_REC, None), f"hold {p}")
            holds.append((p, h))
        _check(
            _libc.mount(b"tmpfs", anc.encode(), b"tmpfs", MS_NOSUID | MS_NODEV, b"mode=0755,size=1m"), f"cover {anc}"
        )
        for p, h in holds:
            os.makedirs(p, mode=0o755, exist_ok=True)
            _check(_libc.mount(h.encode(), p.encode(), None, MS_BIND | MS_REC, None), f"expose {p}")
            _check(_libc.umount2(h.encode(), 2), f"release {h}")  # MNT_DETACH
            os.rmdir(h)


def isolate(scratch_root: str, scratch_mb: int) -> None:
    _check(_libc.unshare(CLONE_NEWNET | CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWUTS), "unshare")
    # Mount events must not propagate back to the host's namespace.
    _check(_libc.mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None), "make-rprivate /")
    opts = f"size={scratch_mb}m,mode=0755,nr_inodes=65536".encode()
    _check(
        _libc.mount(b"tmpfs", scratch_root.encode(), b"tmpfs", MS_NOSUID | MS_NODEV, opts),
        "mount scratch tmpfs",
    )
    needed = {sys.base_prefix, sys.prefix, os.path.dirname(os.path.realpath(sys.executable))}
    needed.update(p for p in sys.path if p and os.path.isdir(p))
    # Paths under the scratch root (this script's own directory in a checkout under
    # /tmp, say) are covered by the fresh tmpfs on purpose: user code needs only the
    # interpreter and its standard library, which must lie elsewhere.
    inside = [
        p for p in needed if os.path.realpath(p) == scratch_root or os.path.realpath(p).startswith(scratch_root + "/")
    ]
    if any(p in inside for p in (sys.base_prefix, os.path.dirname(os.path.realpath(sys.executable)))):
        raise OSError(f"the interpreter lives under {scratch_root}, which the sandbox covers with its scratch tmpfs")
    _expose(sorted(os.path.realpath(p) for p in needed if p not in inside), scratch_root)
    mounts = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            mounts.append(line.split()[4].replace("\\040", " "))
    # Every mount point carries its own read-only flag, so each one is remounted; the
    # scratch tmpfs is the only writable place left.
    ro_failed = []
    for mp in mounts:
        if mp == scratch_root:
            continue
        flags = MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID
        if mp.startswith("/proc") or mp.startswith("/sys"):
            flags |= MS_NODEV | MS_NOEXEC
        if _libc.mount(None, mp.encode(), None, flags, None) != 0:
            ro_failed.append(mp)
    if "/" in ro_failed:
        raise OSError("could not remount / read-only")


_WARM_MODULES = (
    "atexit",
    "bisect",
    "cmath",
    "collections",
    "copy",
    "dataclasses",
    "datetime",
    "decimal",
    "fractions",
    "functools",
    "heapq",
    "io",
    "itertools",
    "json",
    "math",
    "operator",
    "random",
    "re",
    "statistics",
    "string",
    "traceback",
    "typing",
)


def warm() -> None:
    """Import what model-written programs use most; every forked child inherits them loaded."""
    for name in _WARM_MODULES:
        importlib.import_module(name)


def clone_newpid() -> int:
    """fork() into a new PID namespace. unshare(CLONE_NEWPID) works only once per process,
    so the zygote uses the raw clone syscall (no new stack: fork semantics), then runs
    CPython's after-fork bookkeeping in the child itself."""
    nr = SYS_CLONE.get(os.uname().machine)
    if nr is None:
        raise OSError(f"unsupported architecture {os.uname().machine}")
    pid = _libc.syscall(nr, ctypes.c_ulong(CLONE_NEWPID | signal.SIGCHLD), None, None, None, None)
    if pid < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"clone: {os.strerror(err)}")
    if pid == 0:
        ctypes.pythonapi.PyOS_AfterFork_Child()
    return int(pid)
