"""Per-execution limits for the sandbox zygote: a memory cgroup and a no-user-namespace
seccomp filter. Standard library only: the zygote loads this by path before it isolates
itself (``zygote.py``); nothing else imports it at run time.

Why a cgroup: RLIMIT_AS caps each *process*; a program that forks N children may use
N × the cap. A memory cgroup caps what all of an execution's processes use together.
Each zygote runs one execution at a time, so one cgroup per zygote, its limit set and
its peak reset before each execution, is a cgroup per execution. cgroup v2 is used where
the memory controller can be enabled for a new child group, else cgroup v1's memory
hierarchy; where neither is writable (a container without delegation), the zygote falls
back to a budget over RLIMIT_NPROC × RLIMIT_AS (``fallback_nproc``).

Why seccomp: a user namespace gives the program a fresh set of capabilities over new
namespaces it creates (mounts, network...), kernel surface the sandbox does not need.
``unshare``/``clone``/``clone3`` with CLONE_NEWUSER and ``setns`` fail with EPERM
(``clone3``: ENOSYS, its flags live in memory a filter cannot read; libc then falls back
to ``clone``); syscalls from another ABI (i386, x32) fail with EPERM too.
"""

from __future__ import annotations

import ctypes
import errno
import os
import struct

CLONE_NEWUSER = 0x10000000
PR_SET_SECCOMP = 22
SECCOMP_MODE_FILTER = 2
_CGROUP_ROOT = "/sys/fs/cgroup"


class MemoryCgroup:
    """One memory cgroup, driven through descriptors opened before the zygote's mounts
    become read-only."""

    def __init__(self, path: str, version: int) -> None:
        self.path, self.version = path, version
        names = (
            ("memory.max", "memory.peak", "memory.events")
            if version == 2
            else ("memory.limit_in_bytes", "memory.max_usage_in_bytes", "memory.oom_control")
        )
        self._limit = os.open(os.path.join(path, names[0]), os.O_WRONLY)
        self._peak = os.open(os.path.join(path, names[1]), os.O_RDWR)
        self._events = os.open(os.path.join(path, names[2]), os.O_RDONLY)
        swap = os.path.join(path, "memory.swap.max" if version == 2 else "memory.memsw.limit_in_bytes")
        self._swap = os.open(swap, os.O_WRONLY) if os.path.exists(swap) else None
        self.procs = os.open(os.path.join(path, "cgroup.procs"), os.O_WRONLY)

    @classmethod
    def create(cls, name: str) -> MemoryCgroup | None:
        """A new cgroup named ``name`` (v2, else v1), or None where neither can be made."""
        for version, parent in ((2, _v2_parent()), (1, os.path.join(_CGROUP_ROOT, "memory"))):
            if parent is None or not os.path.isdir(parent):
                continue
            _remove_stale(parent)
            path = os.path.join(parent, name)
            try:
                os.mkdir(path, 0o755)
            except FileExistsError:
                pass
            except OSError:
                continue
            try:
                return cls(path, version)
            except OSError:
                remove(path)
        return None

    def set_limit(self, limit_mb: int) -> None:
        val = str(limit_mb << 20).encode()
        if self.version == 1 and self._swap is not None:
            # v1 needs memsw >= mem at every step: raise memsw first when growing.
            first, second = (self._swap, self._limit)
            try:
                os.pwrite(first, val, 0)
                os.pwrite(second, val, 0)
            except OSError:
                os.pwrite(second, val, 0)
                os.pwrite(first, val, 0)
        else:
            os.pwrite(self._limit, val, 0)
            if self._swap is not None:
                os.pwrite(self._swap, b"0", 0)  # v2: no swapping past the cap
        try:  # reset the peak (v1: any write; v2: kernels >= 6.12)
            os.pwrite(self._peak, b"0", 0)
        except OSError:
            pass

    def peak_mb(self) -> float | None:
        try:
            return int(os.pread(self._peak, 64, 0).split()[0]) / (1 << 20)
        except (OSError, ValueError, IndexError):
            return None

    def oom_kills(self) -> int:
        for line in os.pread(self._events, 4096, 0).decode().splitlines():
            key, _, val = line.partition(" ")
            if key == "oom_kill":
                return int(val)
        return 0


def _v2_parent() -> str | None:
    """The zygote's own v2 cgroup where new children get a memory controller, or None."""
    try:
        with open("/proc/self/cgroup") as f:
            rel = next((ln.split(":", 2)[2].strip() for ln in f if ln.startswith("0::")), None)
        if rel is None:
            return None
        base = os.path.join(_CGROUP_ROOT, rel.lstrip("/"))
        with open(os.path.join(base, "cgroup.controllers")) as f:
            if "memory" not in f.read().split():
                return None
        with open(os.path.join(base, "cgroup.subtree_control")) as f:
            if "memory" not in f.read().split():
                return None  # enabling it would need a leaf move we do not own: use v1 or the fallback
        return base
    except (OSError, IndexError):
        return None


def _remove_stale(parent: str) -> None:
    """Groups left by a host that was killed (named proofflow-sandbox-<host pid>-<uid>)."""
    try:
        names = os.listdir(parent)
    except OSError:
        return
    for n in names:
        parts = n.split("-")
        if n.startswith("proofflow-sandbox-") and len(parts) == 4 and parts[2].isdigit():
            try:
                os.kill(int(parts[2]), 0)
            except ProcessLookupError:
                remove(os.path.join(parent, n))
            except PermissionError:
                pass


def remove(path: str) -> None:
    """Remove an (empty) cgroup directory; ignored when it is gone or still in use."""
    try:
        os.rmdir(path)
    except OSError:
        pass


def fallback_nproc(max_procs: int, memory_mb: int, budget_mb: int) -> int:
    """Without a cgroup: processes × per-process address space stays within the budget."""
    return max(1, min(max_procs, budget_mb // max(1, memory_mb)))


# ---------------------------------------------------------------------------- seccomp

_AUDIT_ARCH = {"x86_64": 0xC000003E, "aarch64": 0xC00000B7}
# (unshare, clone, clone3, setns) per architecture.
_NR = {"x86_64": (272, 56, 435, 308), "aarch64": (97, 220, 435, 268)}
_LD_W_ABS, _JEQ, _JGE, _JSET, _RET = 0x20, 0x15, 0x35, 0x45, 0x06
_ALLOW = 0x7FFF0000


def _errno(e: int) -> int:
    return 0x00050000 | e


def _bpf(code: int, k: int, jt: int = 0, jf: int = 0) -> bytes:
    return struct.pack("HBBI", code, jt, jf, k)


def seccomp_program(machine: str) -> bytes:
    """The BPF program (struct sock_filter[]) that refuses new user namespaces."""
    arch, (unshare, clone, clone3, setns) = _AUDIT_ARCH[machine], _NR[machine]
    prog = [
        _bpf(_LD_W_ABS, 4),  # 0: arch
        _bpf(_JEQ, arch, 1, 0),  # 1: native ABI -> 3
        _bpf(_RET, _errno(errno.EPERM)),  # 2: another ABI (i386 int 0x80): refuse
        _bpf(_LD_W_ABS, 0),  # 3: syscall number
        _bpf(_JGE, 0x40000000, 0, 1),  # 4: x32 ABI bit -> 5, else 6
        _bpf(_RET, _errno(errno.EPERM)),  # 5
        _bpf(_JEQ, clone3, 0, 1),  # 6
        _bpf(_RET, _errno(errno.ENOSYS)),  # 7: libc falls back to clone
        _bpf(_JEQ, setns, 0, 1),  # 8
        _bpf(_RET, _errno(errno.EPERM)),  # 9
        _bpf(_JEQ, unshare, 1, 0),  # 10 -> 12
        _bpf(_JEQ, clone, 0, 3),  # 11 -> 12, else 15
        _bpf(_LD_W_ABS, 16),  # 12: args[0] low word (flags, both calls)
        _bpf(_JSET, CLONE_NEWUSER, 0, 1),  # 13
        _bpf(_RET, _errno(errno.EPERM)),  # 14
        _bpf(_RET, _ALLOW),  # 15
    ]
    return b"".join(prog)


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def forbid_user_namespaces() -> None:
    """Install the filter on the calling process (inherited by everything it starts).
    Needs no_new_privs (or CAP_SYS_ADMIN) first."""
    prog = seccomp_program(os.uname().machine)
    buf = ctypes.create_string_buffer(prog, len(prog))
    fprog = _SockFprog(len(prog) // 8, ctypes.cast(buf, ctypes.c_void_p))
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(fprog), 0, 0) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"seccomp: {os.strerror(err)}")
