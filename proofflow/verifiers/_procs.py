"""Process handling shared by the checkers that run untrusted input in child processes."""

from __future__ import annotations

import os
import signal
import subprocess


def kill_group(proc: subprocess.Popen, wait_s: float = 5.0) -> None:
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
