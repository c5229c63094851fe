"""The zygote's one-time isolation, and the clone into the namespaces it uses per run.

Isolation: new network/mount/IPC/UTS namespaces, and a new root built for the sandbox and
pivoted into: a small read-only tmpfs holding read-only binds of the interpreter's prefix
and installed packages, the loader, libc and the system libraries, /usr/bin, a minimal
/dev, an empty /proc (each execution mounts its own procfs there), and a size-capped
writable tmpfs for scratch. The host's root is detached: no project, no data, no home,
no host /proc. Standard library only, loaded by path by ``zygote.py`` (which says what
each execution adds on top)."""

from __future__ import annotations

import ctypes
import importlib
import os
import signal
import sys

CLONE_NEWNS = 0x00020000
CLONE_NEWPID = 0x20000000
SYS_CLONE = {"x86_64": 56, "aarch64": 220}
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
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


# What the interpreter needs from the host besides its own prefix: the dynamic loader
# (PT_INTERP is /lib64/ld-linux-*.so.2), libc and the system libraries that the stdlib's
# extension modules link against, the loader's cache, /usr/bin (programs may run
# subprocesses: `subprocess.run(["sort"])`), and the time-zone database (`zoneinfo`).
# Top-level links (merged /usr: /bin -> usr/bin, /lib -> usr/lib) are recreated as links;
# a path reached through a link is not bound again.
_HOST_LINKS = ("/bin", "/lib", "/lib64")
_HOST_BINDS = ("/usr/bin", "/usr/lib64", "/lib64", "/bin", "/usr/share/zoneinfo", "/etc/ld.so.cache")
# Device nodes a program may open (bound read-only from the host's /dev; a read-only
# mount does not stop writes to a character device, so /dev/null still swallows output).
_DEVICES = ("null", "zero", "full", "random", "urandom")
_DEV_LINKS = {
    "fd": "/proc/self/fd",
    "stdin": "/proc/self/fd/0",
    "stdout": "/proc/self/fd/1",
    "stderr": "/proc/self/fd/2",
}
SYS_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41}
MNT_DETACH = 2


def _through_link(path: str) -> bool:
    """True when ``path`` or one of its ancestors is a symlink on the host."""
    cur = ""
    for part in path.split("/")[1:]:
        cur += "/" + part
        if os.path.islink(cur):
            return True
    return False


def _library_dirs() -> set[str]:
    """Directories of the shared objects this process has mapped (libc, the loader...)."""
    dirs = set()
    with open("/proc/self/maps") as f:
        for line in f:
            fields = line.split(maxsplit=5)
            if len(fields) == 6 and ".so" in fields[5]:
                dirs.add(os.path.dirname(fields[5].strip()))
    multiarch = getattr(sys.implementation, "_multiarch", "")
    if multiarch:
        dirs.update(f"{d}/{multiarch}" for d in ("/usr/lib", "/lib"))
    return {d for d in dirs if os.path.isdir(d) and not _through_link(d)}


def _interpreter_paths(scratch_root: str) -> list[str]:
    """The interpreter's prefixes (its standard library and installed packages) and the
    directory of its executable, outermost only. The sys.path entries programs import
    from lie inside a prefix; an entry outside every prefix was added by a .pth file (a
    project installed in development mode: its source tree), which is exactly what a
    program must not read, so sys.path itself is not consulted."""
    needed = {sys.base_prefix, sys.prefix, os.path.dirname(os.path.realpath(sys.executable))}
    real = {os.path.realpath(p) for p in needed}
    # The scratch root is covered by the scratch tmpfs: user code needs only the
    # interpreter and its libraries, which must lie elsewhere (a checkout under /tmp
    # puts this script's own directory there; it is left out on purpose).
    inside = {p for p in real if _within(p, scratch_root)}
    interpreter = {os.path.realpath(sys.base_prefix), os.path.dirname(os.path.realpath(sys.executable))}
    if interpreter & inside:
        raise OSError(f"the interpreter lives under {scratch_root}, which the sandbox covers with its scratch tmpfs")
    keep = sorted(real - inside)
    return [p for p in keep if not any(p != q and _within(p, q) for q in keep)]


def _within(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


def _bind(source: str, new_root: str) -> None:
    target = new_root + source
    if os.path.isdir(source):
        os.makedirs(target, exist_ok=True)
    else:
        os.makedirs(os.path.dirname(target), exist_ok=True)
        open(target, "a").close()  # a file to mount the source file on
    _check(_libc.mount(source.encode(), target.encode(), None, MS_BIND | MS_REC, None), f"bind {source}")


def _link(path: str, target: str, new_root: str) -> None:
    os.makedirs(os.path.dirname(new_root + path), exist_ok=True)
    os.symlink(target, new_root + path)


def _build_root(new_root: str, scratch_root: str, scratch_mb: int) -> None:
    """A fresh root on a small tmpfs at ``new_root``: read-only binds of exactly what the
    interpreter needs, a minimal /dev, an empty /proc (each execution mounts its own
    procfs there), and the writable scratch tmpfs at ``scratch_root``. Nothing else of
    the host exists in it: no /work, no home, no /root beyond the interpreter, no /etc
    beyond the loader's cache."""
    _check(
        _libc.mount(b"tmpfs", new_root.encode(), b"tmpfs", MS_NOSUID | MS_NODEV, b"mode=0755,size=1m,nr_inodes=4096"),
        "mount the new root",
    )
    for path in _interpreter_paths(scratch_root):
        _bind(path, new_root)
    for path in _HOST_LINKS:
        if os.path.islink(path):
            _link(path, os.readlink(path), new_root)
    for path in sorted(_library_dirs() | set(_HOST_BINDS)):
        if os.path.exists(path) and not _through_link(path) and not os.path.exists(new_root + path):
            _bind(path, new_root)
    os.makedirs(new_root + "/dev")
    for name in _DEVICES:
        if os.path.exists("/dev/" + name):
            _bind("/dev/" + name, new_root)
    for name, target in _DEV_LINKS.items():
        _link("/dev/" + name, target, new_root)
    os.makedirs(new_root + "/proc")
    os.makedirs(new_root + "/etc", exist_ok=True)
    os.makedirs(new_root + scratch_root, exist_ok=True)
    opts = f"size={scratch_mb}m,mode=0755,nr_inodes=65536".encode()
    scratch = new_root + scratch_root
    _check(_libc.mount(b"tmpfs", scratch.encode(), b"tmpfs", MS_NOSUID | MS_NODEV, opts), "mount scratch tmpfs")
    # A bind mount takes its own read-only flag, and so does each mount under it: every
    # mount of the new root but the scratch tmpfs is remounted read-only.
    for mp in _mounts_under(new_root):
        if mp == scratch:
            continue
        flags = MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID
        flags |= MS_NOEXEC if mp.startswith(new_root + "/dev/") else MS_NODEV
        _check(_libc.mount(None, mp.encode(), None, flags, None), f"remount {mp} read-only")


def _mounts_under(new_root: str) -> list[str]:
    """Mount points of the tmpfs last mounted on ``new_root`` and of every mount stacked
    on it, by mount id (a host mount under the same path, now hidden, is not one)."""
    with open("/proc/self/mountinfo") as f:
        rows = [line.split() for line in f]
    points = {row[0]: row[4].replace("\\040", " ") for row in rows}
    root_id = [row[0] for row in rows if points[row[0]] == new_root][-1]
    inside, grew = {root_id}, True
    while grew:
        more = {row[0] for row in rows if row[1] in inside} - inside
        inside |= more
        grew = bool(more)
    return [points[i] for i in sorted(inside, key=int)]


def _pivot(new_root: str) -> None:
    """Make ``new_root`` the root and drop the old one (pivot_root(".", "."), then detach
    the old root stacked on top: the man page's idiom, no put_old directory needed)."""
    nr = SYS_PIVOT_ROOT.get(os.uname().machine)
    if nr is None:
        raise OSError(f"unsupported architecture {os.uname().machine}")
    os.chdir(new_root)
    if _libc.syscall(nr, b".", b".") != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"pivot_root: {os.strerror(err)}")
    _check(_libc.umount2(b".", MNT_DETACH), "detach the old root")
    os.chdir("/")


def isolate(scratch_root: str, scratch_mb: int) -> None:
    _check(_libc.unshare(CLONE_NEWNET | CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWUTS), "unshare")
    # Mount events must not propagate back to the host's namespace.
    _check(_libc.mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None), "make-rprivate /")
    # The new root is built on a tmpfs mounted over the scratch root (what it hides there
    # is not needed; see _interpreter_paths), then becomes "/".
    old_umask = os.umask(0o022)
    try:
        _build_root(scratch_root, scratch_root, scratch_mb)
    finally:
        os.umask(old_umask)
    _pivot(scratch_root)


def mount_own_proc() -> None:
    """In an execution (pid 1 of its PID namespace, its own mount namespace, still root):
    a fresh, read-only procfs on /proc that shows only this namespace's processes."""
    flags = MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC
    _check(_libc.mount(b"proc", b"/proc", b"proc", flags, None), "mount /proc")


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
    """fork() into a new PID namespace and a new mount namespace (where the execution
    mounts its own /proc). unshare(CLONE_NEWPID) works only once per process, so the
    zygote uses the raw clone syscall (no new stack: fork semantics), then runs CPython's
    after-fork bookkeeping in the child itself."""
    nr = SYS_CLONE.get(os.uname().machine)
    if nr is None:
        raise OSError(f"unsupported architecture {os.uname().machine}")
    pid = _libc.syscall(nr, ctypes.c_ulong(CLONE_NEWPID | CLONE_NEWNS | signal.SIGCHLD), None, None, None, None)
    if pid < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"clone: {os.strerror(err)}")
    if pid == 0:
        ctypes.pythonapi.PyOS_AfterFork_Child()
    return int(pid)
