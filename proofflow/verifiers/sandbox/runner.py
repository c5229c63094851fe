"""Run untrusted Python (model-written programs) in a sandbox, and turn results into Verdicts.

``Sandbox`` keeps a pool of zygotes (one per core by default), each an already-isolated,
warm Python process (see ``zygote.py`` for the isolation it sets up) that forks a
fresh child per execution. ``Sandbox.run`` is thread-safe: a caller borrows an idle zygote,
so at most ``size`` programs run at once and the rest wait their turn.

Guarantees per execution: no network (own network namespace), nothing writable outside a
fresh scratch directory (read-only remount of every mount in the zygote's mount namespace;
the scratch dir lives on a size-capped tmpfs), a dedicated unprivileged uid, a scrubbed
environment, RLIMIT_CPU/AS/FSIZE/NPROC/NOFILE, a wall-clock limit, capped output, and on
exit or timeout every process the program started dies (PID namespace per execution).

Requires root (namespaces, mounts, setuid). ``SandboxUnavailable`` is raised otherwise.

`ExecResult`, `Limits` and the verdict builders live in ``result.py`` (re-exported by the package).

Outcomes: PASS = exited 0; FAIL = exited non-zero (an uncaught exception is exit 1);
ERROR = killed by a signal (segfault, ...), output over the cap, or a sandbox failure;
TIMEOUT = wall-clock or CPU-time limit reached.
"""

from __future__ import annotations

import atexit
import os
import pickle
import secrets
import signal
import socket
import struct
import sys
import threading
import time
from pathlib import Path
from typing import Any

from proofflow.verifiers.procs import Child, ChildSpec, NoWorkerFree, Pool, ReadTimeout, Rlimits, length_prefixed
from proofflow.verifiers.sandbox.result import (
    ExecResult,
    Limits,
    self_verify_verdict,
)
from proofflow.verifiers.verdict import Outcome, Verdict

# The result types and verdict builders are result.py's; the package re-exports both.
__all__ = ["Sandbox", "SandboxUnavailable", "default_sandbox", "self_verify"]

_ZYGOTE = Path(__file__).with_name("zygote.py")
_BASE_PYTHON = getattr(sys, "_base_executable", None) or sys.executable
# Each zygote gets its own uid, so concurrent executions cannot signal each other's
# processes, and RLIMIT_NPROC (counted per uid) is per execution. The host pid is part of
# it so that two processes on one machine (a flow and a test run) do not share uids.
_UID_BASE = 200_000
_UIDS_PER_PROCESS = 64
_uid_counter = 0
_uid_lock = threading.Lock()


class SandboxUnavailable(RuntimeError):
    """The sandbox cannot be set up here (not root, no namespaces)."""


def _classify(raw: dict[str, Any]) -> tuple[Outcome, str]:
    sig = raw.get("signal")
    if raw.get("timed_out") or sig == signal.SIGXCPU:
        return Outcome.TIMEOUT, "timeout"
    if raw.get("output_limit"):
        return Outcome.ERROR, "output_limit"
    if sig == signal.SIGKILL and raw.get("oom_kills"):
        return Outcome.ERROR, "memory_limit"  # the execution's cgroup ran out of memory
    if sig is not None:
        return Outcome.ERROR, "signal"
    if raw.get("exit_code") == 0:
        return Outcome.PASS, "ok"
    if raw.get("exit_code") == 125 and raw.get("stderr", b"").startswith(b"sandbox setup failed"):
        return Outcome.ERROR, "sandbox_error"
    return Outcome.FAIL, "exit_nonzero"


class _Zygote:
    """Host-side handle of one zygote process. Used by one caller at a time."""

    def __init__(self, uid: int, scratch_mb: int) -> None:
        self.uid = uid
        self._host, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        spec = ChildSpec(
            # The base interpreter, not a virtualenv's: the zygote needs only the standard
            # library, and a venv (often under /tmp) would vanish under the scratch tmpfs.
            argv=(_BASE_PYTHON, "-I", str(_ZYGOTE), str(child.fileno()), str(uid), "/tmp", str(scratch_mb)),
            limits=Rlimits(core_bytes=None),  # the zygote sets each execution's limits itself
            env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"},
            channel="socket",
            pass_fds=(child.fileno(),),
        )
        self.child = Child(spec, channel_fd=self._host.fileno())
        try:
            self.child.start()
        finally:
            child.close()
        self.pid: int | None = None
        self.cgroup: str | None = None  # the zygote's execution cgroup (removed on close)
        self._ready = False

    def _recv(self, deadline: float) -> dict[str, Any] | None:
        try:
            body = self.child.read_frame(length_prefixed, deadline)
        except ReadTimeout:
            return None
        msg: dict[str, Any] = pickle.loads(body)
        return msg

    def ensure_ready(self, timeout_s: float = 30.0) -> None:
        if self._ready:
            return
        msg = self._recv(time.monotonic() + timeout_s)
        if msg is None or not msg.get("ready"):
            self.close()
            why = "timed out starting" if msg is None else msg.get("error")
            raise SandboxUnavailable(f"sandbox zygote failed: {why} (the sandbox needs root)")
        self.pid = int(msg["pid"])
        self.cgroup = msg.get("cgroup")
        self._ready = True

    def execute(self, req: dict[str, Any], timeout_s: float) -> dict[str, Any] | None:
        self.ensure_ready()
        data = pickle.dumps(req, protocol=pickle.HIGHEST_PROTOCOL)
        self.child.send(struct.pack(">I", len(data)) + data)
        # The zygote enforces the limit itself; the slack covers teardown and transfer.
        return self._recv(time.monotonic() + timeout_s + 10.0)

    def alive(self) -> bool:
        return self.child.alive()

    def close(self) -> None:
        self.child.kill()
        self._host.close()
        if self.cgroup:
            try:  # empty now that the zygote and its executions are dead
                os.rmdir(self.cgroup)
            except OSError:
                pass


class Sandbox:
    """A pool of isolated zygotes. Thread-safe; use as a context manager or call close()."""

    def __init__(
        self,
        size: int | None = None,
        limits: Limits | None = None,
        scratch_mb: int = 256,
        acquire_timeout_s: float = 600.0,
    ) -> None:
        if os.geteuid() != 0:
            raise SandboxUnavailable("the Python sandbox needs root (namespaces, mounts, setuid)")
        self.size = size or max(1, os.cpu_count() or 1)
        self.limits = limits or Limits()
        # How long run() waits for a free zygote before it answers ERROR "no zygote free".
        self.acquire_timeout_s = acquire_timeout_s
        self._scratch_mb = scratch_mb
        self._closed = False
        self._pool: Pool[_Zygote] = Pool(self._spawn, self.size, name="sandbox", replace_eagerly=True)
        self._pool.fill()
        # Fail fast (and pay start-up now, not on the first run).
        try:
            for z in self._pool.workers():
                z.ensure_ready()
        except SandboxUnavailable:
            self._pool.close()
            raise

    def _spawn(self) -> _Zygote:
        global _uid_counter
        with _uid_lock:
            slot = os.getpid() % 100_000
            uid = _UID_BASE + slot * _UIDS_PER_PROCESS + _uid_counter
            _uid_counter = (_uid_counter + 1) % _UIDS_PER_PROCESS
        return _Zygote(uid, self._scratch_mb)

    def zygote_uids(self) -> set[int]:
        """The uids the live zygotes run executions under (tests look for leftovers)."""
        return {z.uid for z in self._pool.workers()}

    def zygote_pids(self) -> list[int]:
        """Host pids of the live zygotes (tests check that hostile programs cannot kill them)."""
        return [z.child.pid for z in self._pool.workers() if z.alive() and z.child.pid is not None]

    def run(
        self,
        code: str,
        stdin: str | bytes | None = None,
        timeout_s: float | None = None,
        *,
        limits: Limits | None = None,
        marker: str | None = None,
    ) -> ExecResult:
        """Execute ``code`` as ``__main__`` in a fresh sandboxed process.

        ``marker``: a line the harness prints to stdout after the code ran to its end (not
        printed when it exits early, raises or is killed); see ``self_verify``.
        """
        if self._closed:
            raise RuntimeError("sandbox is closed")
        lim = limits or self.limits
        timeout = float(timeout_s if timeout_s is not None else lim.timeout_s)
        req = {
            "code": code,
            "stdin": stdin.encode() if isinstance(stdin, str) else stdin,
            "timeout_s": timeout,
            "memory_mb": lim.memory_mb,
            "memory_budget_mb": lim.memory_budget_mb,
            "file_mb": lim.file_mb,
            "max_procs": lim.max_procs,
            "max_files": lim.max_files,
            "max_output": lim.max_output,
            "marker": marker,
        }
        t0 = time.monotonic()
        raw: dict[str, Any] | None
        try:
            with self._pool.lease(self.acquire_timeout_s) as z:
                t0 = time.monotonic()
                try:
                    raw = z.execute(req, timeout)
                except (OSError, EOFError, pickle.UnpicklingError) as exc:
                    raw = {"error": f"{type(exc).__name__}: {exc}"}
                    z_ok = False
                else:
                    z_ok = raw is not None and z.alive()
                if not z_ok:  # a zygote that died or stopped answering is replaced, never reused
                    self._pool.mark_broken(z)
        except NoWorkerFree as exc:
            # No zygote free: the code never ran, so nothing is known about it (not a timeout of the program).
            return ExecResult(
                "", "", None, time.monotonic() - t0, Outcome.ERROR, reason="sandbox_error", details={"error": str(exc)}
            )
        if raw is None or "error" in raw:
            why = "zygote did not answer" if raw is None else str(raw["error"])
            return ExecResult(
                "", "", None, time.monotonic() - t0, Outcome.ERROR, reason="sandbox_error", details={"error": why}
            )
        outcome, reason = _classify(raw)
        return ExecResult(
            stdout=raw["stdout"].decode("utf-8", "replace"),
            stderr=raw["stderr"].decode("utf-8", "replace"),
            exit_code=raw["exit_code"],
            duration_s=raw["duration_s"],
            outcome=outcome,
            signal=raw["signal"],
            timed_out=outcome is Outcome.TIMEOUT,
            stdout_truncated=raw["stdout_truncated"],
            stderr_truncated=raw["stderr_truncated"],
            reason=reason,
            details={k: raw[k] for k in ("memory_cap", "memory_peak_mb", "oom_kills") if k in raw},
        )

    def close(self) -> None:
        self._closed = True
        self._pool.close()

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_default: Sandbox | None = None
_default_lock = threading.Lock()


def default_sandbox() -> Sandbox:
    """The process-wide sandbox (created on first use, closed at interpreter exit)."""
    global _default
    with _default_lock:
        if _default is None or _default._closed:
            _default = Sandbox()
            atexit.register(_default.close)
        return _default


def self_verify(
    code: str, sandbox: Sandbox | None = None, timeout_s: float = 10.0, stdin: str | None = None
) -> Verdict:
    """Run the model's checking program with a fresh random marker and judge it."""
    marker = "__proofflow_done_" + secrets.token_hex(16)
    result = (sandbox or default_sandbox()).run(code, stdin=stdin, timeout_s=timeout_s, marker=marker)
    return self_verify_verdict(result, marker)
