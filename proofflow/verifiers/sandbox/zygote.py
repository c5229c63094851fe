"""The sandbox zygote: an isolated, warm Python process that forks one child per execution.

Run as a script (stdlib only, by path) by ``runner.Sandbox``; never imported by it.

Isolation, set up once when the zygote starts (it runs as root; ``isolation.py``):
- a new network namespace (only a downed loopback: connect() fails at once), and new IPC
  and UTS namespaces;
- a new mount namespace and a new root, pivoted into: read-only binds of exactly what the
  interpreter needs (its prefix and packages, the loader, libc and system libraries,
  /usr/bin, a minimal /dev), nothing else of the host (no project, no data, no home, no
  host /proc); a fresh, size-limited tmpfs on /tmp, where each execution gets its own
  0700 directory owned by the execution's uid. Nothing else is writable, whatever the uid;
- warm imports of common stdlib modules, so a child starts with them already loaded.

Per execution (one at a time per zygote; the host runs a pool of zygotes):
- ``clone(CLONE_NEWPID | CLONE_NEWNS)`` forks the user process as pid 1 of a fresh PID
  namespace, in its own mount namespace, where it mounts a fresh read-only procfs on
  /proc: it sees its own processes and nothing of the host's. When
  it exits, or the zygote SIGKILLs it on timeout, the kernel kills every process left in
  that namespace: children that setsid()ed, daemonized or double-forked included. Nothing
  can outlive its execution.
- the user process drops to a dedicated uid (root's processes are out of reach for
  signals; RLIMIT_NPROC counts per uid), sets CPU/AS/FSIZE/NPROC/NOFILE/CORE limits and
  no_new_privs, scrubs the environment, and execs the code in the warm interpreter.
- it joins the zygote's memory cgroup, whose limit is the execution's memory budget (all
  its processes together), and installs a seccomp filter refusing new user namespaces
  (``limits.py``);
- the zygote enforces the wall clock and the output cap and reports stdout/stderr/status.

Protocol on the socket given as argv[1]: 4-byte big-endian length + pickle, both ways.
Requests come only from the host process that started us; the user's code runs in a
separate process with another uid, so pickle here is not an attack surface.
"""

from __future__ import annotations

import ctypes
import os
import pickle
import resource
import select
import shutil
import signal
import socket
import struct
import sys
import time
from types import ModuleType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from proofflow.verifiers.sandbox.limits import MemoryCgroup

PR_SET_PDEATHSIG = 1
PR_SET_NO_NEW_PRIVS = 38

_libc = ctypes.CDLL(None, use_errno=True)


def _load(name: str) -> ModuleType:
    """A sibling module by path (run with -I, this script's directory is not on sys.path;
    adding it would put the whole verifiers package in reach of user code)."""
    import importlib.util

    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), name + ".py")
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


_limits = _load("limits")
_isolation = _load("isolation")
# The execution cgroup (one per zygote, one execution at a time); None: the RLIMIT budget.
_CGROUP: MemoryCgroup | None = None
_libc.syscall.restype = ctypes.c_long


def _recv(sock: socket.socket) -> dict[str, Any] | None:
    head = b""
    while len(head) < 4:
        chunk = sock.recv(4 - len(head))
        if not chunk:
            return None
        head += chunk
    (n,) = struct.unpack(">I", head)
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(min(1 << 20, n - len(buf)))
        if not chunk:
            return None
        buf += chunk
    msg: dict[str, Any] = pickle.loads(bytes(buf))
    return msg


def _send(sock: socket.socket, obj: object) -> None:
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    sock.sendall(struct.pack(">I", len(data)) + data)


def _user_process(req: dict[str, Any], scratch: str, uid: int, fds: tuple[int, int, int]) -> None:
    """Runs in the user process (pid 1 of the execution's namespace). Never returns: an
    escaping exception would otherwise unwind into the zygote's own loop."""
    try:
        _run_user(req, scratch, uid, fds)
    finally:
        os._exit(124)


def _run_user(req: dict[str, Any], scratch: str, uid: int, fds: tuple[int, int, int]) -> None:
    try:
        stdin_r, out_w, err_w = fds
        if _CGROUP is not None:  # first, before this process allocates anything of its own
            os.write(_CGROUP.procs, b"0")
        _isolation.mount_own_proc()  # needs root: before the uid drop
        os.setsid()
        os.dup2(stdin_r, 0)
        os.dup2(out_w, 1)
        os.dup2(err_w, 2)
        os.closerange(3, 1 << 16)
        os.chdir(scratch)
        cpu = max(1, int(req["timeout_s"] + 1.999))
        mem = int(req["memory_mb"]) << 20
        nproc = int(req["max_procs"])
        if _CGROUP is None:  # no cgroup: keep processes x address space within the budget
            nproc = _limits.fallback_nproc(nproc, int(req["memory_mb"]), int(req["memory_budget_mb"]))
        for lim, val in (
            (resource.RLIMIT_CPU, (cpu, cpu + 1)),
            (resource.RLIMIT_AS, (mem, mem)),
            (resource.RLIMIT_FSIZE, (int(req["file_mb"]) << 20,) * 2),
            (resource.RLIMIT_NPROC, (nproc, nproc)),
            (resource.RLIMIT_NOFILE, (int(req["max_files"]),) * 2),
            (resource.RLIMIT_CORE, (0, 0)),
        ):
            resource.setrlimit(lim, val)
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)
        _libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)  # setuid binaries cannot regain root
        _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)  # (cleared by setuid: set after)
        _limits.forbid_user_namespaces()  # no new user namespace (module docstring says why)
        os.environ.clear()
        os.environ.update(
            {
                "PATH": "/usr/local/bin:/usr/bin:/bin",
                "HOME": scratch,
                "TMPDIR": scratch,
                "LANG": "C.UTF-8",
                "PYTHONDONTWRITEBYTECODE": "1",
                "PYTHONIOENCODING": "utf-8",
            }
        )
        import io

        sys.stdin = io.TextIOWrapper(io.FileIO(0, "r", closefd=False), encoding="utf-8", errors="replace")
        sys.stdout = io.TextIOWrapper(io.FileIO(1, "w", closefd=False), encoding="utf-8", errors="backslashreplace")
        sys.stderr = io.TextIOWrapper(
            io.FileIO(2, "w", closefd=False), encoding="utf-8", errors="backslashreplace", line_buffering=True
        )
        sys.argv = ["main.py"]
        sys.path.insert(0, scratch)
        code = req["code"]
        marker = req.get("marker")
        with open("main.py", "w", encoding="utf-8") as f:  # so tracebacks can show source lines
            f.write(code)
        del req
    except BaseException as exc:  # setup failure: report on stderr, distinct exit code
        try:
            os.write(2, f"sandbox setup failed: {exc!r}\n".encode())
        finally:
            os._exit(125)

    import atexit
    import builtins
    import traceback

    rc = 0
    finished = False
    try:
        exec(
            compile(code, "main.py", "exec"), {"__name__": "__main__", "__file__": "main.py", "__builtins__": builtins}
        )
        finished = True
    except SystemExit as e:
        if e.code is None:
            rc = 0
        elif isinstance(e.code, int):
            rc = e.code & 0xFF
        else:
            print(e.code, file=sys.stderr)
            rc = 1
    except BaseException as e:
        # Skip the harness's own frame: the model should see only its program's lines.
        tb = e.__traceback__.tb_next if e.__traceback__ is not None else None
        try:
            traceback.print_exception(type(e), e, tb)
        except BaseException:
            pass
        rc = 1
    try:
        atexit._run_exitfuncs()
        if finished and marker:
            # Printed only after the user's code ran to its end: a program that exits early
            # (sys.exit before its check) cannot produce it.
            sys.stdout.write("\n" + marker + "\n")
        sys.stdout.flush()
        sys.stderr.flush()
    except BaseException:
        rc = rc or 1
    os._exit(rc)


def _wait(rlist: list[int], wlist: list[int], timeout: float) -> tuple[list[int], list[int]]:
    """select() for any fd number (select.select fails for fds >= 1024)."""
    p = select.poll()
    for fd in rlist:
        p.register(fd, select.POLLIN)
    for fd in wlist:
        p.register(fd, select.POLLOUT)
    ready = p.poll(timeout * 1000)
    r = [fd for fd, ev in ready if fd in rlist and ev & (select.POLLIN | select.POLLHUP | select.POLLERR)]
    w = [fd for fd, ev in ready if fd in wlist and ev & (select.POLLOUT | select.POLLHUP | select.POLLERR)]
    return r, w


def _execute(req: dict[str, Any], scratch_root: str, uid: int, seq: int) -> dict[str, Any]:
    scratch = os.path.join(scratch_root, f"run{seq}")
    os.mkdir(scratch, 0o700)
    os.chown(scratch, uid, uid)
    stdin_r, stdin_w = os.pipe()
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    oom_before = 0
    if _CGROUP is not None:
        _CGROUP.set_limit(int(req["memory_budget_mb"]))
        oom_before = _CGROUP.oom_kills()
    t0 = time.monotonic()
    # The user process is pid 1 of its own PID namespace: when it exits or is killed, the
    # kernel kills every process left in the namespace (setsid()ed daemons included).
    # A separate init process would cost a fork per run for nothing the kernel does not
    # already do; the price is init's signal semantics (a signal the program sends itself
    # without a handler is ignored), which the wall clock and SIGKILL make harmless.
    pid = _isolation.clone_newpid()
    if pid == 0:
        for fd in (stdin_w, out_r, err_r):
            os.close(fd)
        _user_process(req, scratch, uid, (stdin_r, out_w, err_w))
    for fd in (stdin_r, out_w, err_w):
        os.close(fd)
    pidfd = os.pidfd_open(pid)

    cap = int(req["max_output"])
    deadline = t0 + float(req["timeout_s"])
    bufs = {out_r: bytearray(), err_r: bytearray()}
    truncated = {out_r: False, err_r: False}
    data_in = req.get("stdin") or b""
    open_r = [out_r, err_r, pidfd]
    wlist = [stdin_w] if data_in else []
    if not data_in:
        os.close(stdin_w)  # EOF at once for a program that reads stdin
    timed_out = output_limit = killed = False

    def kill() -> None:
        nonlocal killed
        if not killed:
            killed = True
            try:
                os.kill(pid, signal.SIGKILL)  # from the parent namespace: init cannot ignore it
            except ProcessLookupError:
                pass

    try:
        while open_r or wlist:
            now = time.monotonic()
            if now >= deadline and not killed:
                timed_out = True
                kill()
                deadline = now + 2.0  # drain what is left, then stop regardless
            elif now >= deadline:
                break
            r, w = _wait(open_r, wlist, max(0.0, deadline - now))
            for fd in w:
                try:
                    n = os.write(fd, data_in[:65536])
                    data_in = data_in[n:]
                except OSError:  # the program closed stdin or exited
                    data_in = b""
                if not data_in:
                    os.close(fd)
                    wlist.remove(fd)
            for fd in r:
                if fd == pidfd:  # exited: its namespace is gone, the pipes are at EOF now
                    open_r.remove(fd)
                    if wlist:
                        os.close(stdin_w)
                        wlist.clear()
                    continue
                chunk = os.read(fd, 65536)
                if not chunk:
                    open_r.remove(fd)
                    os.close(fd)  # a long-lived zygote must not leak descriptors
                    continue
                buf = bufs[fd]
                room = cap - len(buf)
                if len(chunk) > room:
                    buf += chunk[: max(room, 0)]
                    truncated[fd] = True
                    output_limit = True
                    kill()  # more output would be thrown away; stop burning CPU on it
                else:
                    buf += chunk
    finally:
        for fd in open_r + wlist:
            if fd != pidfd:
                os.close(fd)
        if not killed and pidfd in open_r:  # left the loop early (drain deadline)
            kill()
        os.close(pidfd)
        _, status, usage = os.wait4(pid, 0)
        shutil.rmtree(scratch, ignore_errors=True)
    duration = time.monotonic() - t0

    exit_code: int | None = None
    sig: int | None = None
    if os.WIFEXITED(status):
        exit_code = os.WEXITSTATUS(status)
    elif os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
    # RLIMIT_CPU: init ignores the soft-limit SIGXCPU, so the hard limit's SIGKILL ends it;
    # the CPU time it used tells that apart from any other SIGKILL.
    cpu_limited = sig == signal.SIGKILL and usage.ru_utime + usage.ru_stime >= int(req["timeout_s"] + 1.999) - 0.05
    return {
        "stdout": bytes(bufs[out_r]),
        "stderr": bytes(bufs[err_r]),
        "exit_code": exit_code,
        "signal": sig,
        "timed_out": timed_out or cpu_limited,
        "output_limit": output_limit,
        "stdout_truncated": truncated[out_r],
        "stderr_truncated": truncated[err_r],
        "duration_s": duration,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "memory_cap": f"cgroup-v{_CGROUP.version}" if _CGROUP is not None else "rlimit",
        "memory_peak_mb": _CGROUP.peak_mb() if _CGROUP is not None else None,
        "oom_kills": _CGROUP.oom_kills() - oom_before if _CGROUP is not None else 0,
    }


def main() -> None:
    sock = socket.socket(fileno=int(sys.argv[1]))
    uid = int(sys.argv[2])
    scratch_root = sys.argv[3]
    scratch_mb = int(sys.argv[4])
    global _CGROUP
    try:
        _CGROUP = _limits.MemoryCgroup.create(f"proofflow-sandbox-{os.getppid()}-{uid}")
        _isolation.isolate(scratch_root, scratch_mb)
        _isolation.warm()
        # Objects that exist now are never collected in the children; freezing them keeps
        # the GC from touching (and copy-on-write copying) their pages after each fork.
        import gc

        gc.collect()
        gc.freeze()
    except BaseException as exc:
        _send(sock, {"ready": False, "error": repr(exc)})
        return
    _send(sock, {"ready": True, "pid": os.getpid(), "cgroup": _CGROUP.path if _CGROUP is not None else None})
    seq = 0
    while True:
        req = _recv(sock)
        if req is None:  # the host closed its end (or died): nothing left to serve
            return
        seq += 1
        try:
            resp = _execute(req, scratch_root, uid, seq)
        except BaseException as exc:
            resp = {"error": f"{type(exc).__name__}: {exc}"}
        _send(sock, resp)


if __name__ == "__main__":
    main()
