"""Facts about other processes on this host, shared by the code that cleans up after
killed ones (the run lease, the writer's leftover batches, the CLI's temporary Prefect
server)."""

from __future__ import annotations

import os


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists (one we may not signal counts as alive)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
