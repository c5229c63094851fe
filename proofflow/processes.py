"""Processes on this host: facts about other processes (the run lease, the writer's
leftover batches, the CLI's temporary Prefect server clean up after killed ones), and
the one way proofflow starts a child that must not outlive it (`start_child`).

Why `start_child`: a server started for one command or one test session (the temporary
Prefect server, a vLLM server a test fixture starts) was a plain child; a command killed
with SIGKILL or SIGTERM (no atexit, no finally) left it running for good (issue 12.1: 16
Prefect servers after 23 kills; issue 20.15: a 2.2 GB vLLM server after a SIGTERMed test
run). A child started here runs under a small launcher (`python -m proofflow.processes`),
the leader of a process group of its own that the command runs in:

- the kernel tells the launcher when the process that started it dies (PR_SET_PDEATHSIG,
  Linux), and it also checks its parent pid every half second (other systems, and a
  parent thread's exit, which PR_SET_PDEATHSIG also reports);
- then, or when the launcher itself gets SIGTERM / SIGINT / SIGHUP (`Popen.terminate()`,
  a stop), it sends SIGTERM to its whole group, the command's own children included
  (vLLM's engine processes, uvicorn's workers), and SIGKILL after a grace period;
- when the command exits by itself, the launcher stops what it left in the group and
  exits with the command's code.

Its own session also keeps a Ctrl-C in the terminal from reaching the child before the
command that owns it has decided what to do.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Any

PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
GRACE_S = 10.0  # from SIGTERM to SIGKILL for the group


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists (one we may not signal counts as alive)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def start_child(
    command: Sequence[str],
    *,
    stdin: int | IO[Any] | None = subprocess.DEVNULL,
    stdout: int | IO[Any] | None = None,
    stderr: int | IO[Any] | None = None,
    env: Mapping[str, str] | None = None,
    cwd: str | Path | None = None,
    grace_s: float = GRACE_S,
) -> subprocess.Popen[bytes]:
    """Start `command` so that it, and everything it starts, dies with this process.

    Returns the launcher's Popen: its pid is the process group of the command and its
    children (`os.killpg(pid, ...)` reaches them all), `terminate()` stops them all, and
    its exit code is the command's."""
    launcher = [sys.executable, "-m", "proofflow.processes", "--parent", str(os.getpid()),
                "--grace", str(grace_s), "--", *command]
    return subprocess.Popen(launcher, stdin=stdin, stdout=stdout, stderr=stderr,
                            env=dict(env) if env is not None else None, cwd=cwd, start_new_session=True)


# -- the launcher, run as `python -m proofflow.processes --parent PID -- COMMAND...` ------


def _launch(parent: int, command: list[str], grace_s: float) -> int:
    stop = [False]

    def on_stop(signum: int, frame: Any) -> None:
        stop[0] = True

    def on_parent_death(signum: int, frame: Any) -> None:
        # Also sent when the parent *thread* that started us ends: only a changed parent
        # pid means the process is gone.
        if os.getppid() != parent:
            stop[0] = True

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, on_stop)
    signal.signal(signal.SIGUSR2, on_parent_death)
    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGUSR2)
    if os.getppid() != parent:  # it died before the line above took effect
        return 1
    child = subprocess.Popen(command)  # in our process group: killpg reaches it and its children
    while not stop[0] and os.getppid() == parent:
        try:
            code = child.wait(timeout=0.5)
        except subprocess.TimeoutExpired:
            continue
        _stop_group(grace_s=1.0)  # what it left behind in the group
        return code
    _stop_group(grace_s, child)
    return 1 if child.returncode is None else child.returncode


def _stop_group(grace_s: float, child: subprocess.Popen[bytes] | None = None) -> None:
    """SIGTERM every other process of our group, SIGKILL them after `grace_s`."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # the group's signal reaches us too
    group = os.getpgrp()
    try:
        os.killpg(group, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline and _others_in_group(group):
        if child is not None:
            child.poll()  # reap it, so it does not count as alive
        time.sleep(0.1)
    if _others_in_group(group):
        for pid in _others_in_group(group):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    if child is not None:
        try:
            child.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass


def _others_in_group(group: int) -> list[int]:
    """Live (not zombie) processes of process group `group`, other than this one."""
    me = os.getpid()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == me:
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[-1].split()
        # fields: state ppid pgrp ...
        if len(fields) > 2 and fields[2] == str(group) and fields[0] not in ("Z", "X"):
            found.append(int(entry.name))
    return found


def main(argv: list[str] | None = None) -> None:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m proofflow.processes", description=start_child.__doc__)
    parser.add_argument("--parent", type=int, required=True)
    parser.add_argument("--grace", type=float, default=GRACE_S)
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no command given")
    sys.exit(_launch(args.parent, command, args.grace))


if __name__ == "__main__":
    main()
