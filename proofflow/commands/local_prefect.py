"""The temporary Prefect API server of a CLI run that has no Prefect server configured:
one that dies with the CLI and keeps its output off the terminal.

Why not Prefect's own temporary server: Prefect starts it (uvicorn, ~200 MB) as a plain
child process and stops it from an atexit hook, so a CLI killed with SIGKILL or SIGTERM
leaves it running for good (issue 12.1: 23 kills left 16 of them), and it writes its
shutdown tracebacks ("Error flushing ... CancelledError", 150-230 lines) into the CLI's
terminal (issue 12.8). This one runs the same app (prefect.server.api.server:create_app,
in Prefect's ephemeral mode, `main` below) as a child that dies with the CLI
(processes.start_child: a launcher told of its parent's death by the kernel,
PR_SET_PDEATHSIG, that also watches its parent's pid, and stops the server's whole
process group). Its output goes to a log file, removed after a clean stop.
"""

from __future__ import annotations

import argparse
import atexit
import os
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from proofflow.processes import pid_alive, start_child


class LocalServerError(RuntimeError):
    pass


@dataclass
class LocalServer:
    process: subprocess.Popen[bytes]
    port: int
    log_path: Path

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api"

    def wait_ready(self, timeout_s: float = 180.0) -> None:
        """Block until the server answers /health (its first start migrates a new
        database: seconds to a minute on a busy machine)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise LocalServerError(f"the temporary Prefect server exited with code "
                                       f"{self.process.returncode}: {self._tail()}")
            try:
                if httpx.get(f"{self.api_url}/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise LocalServerError(f"the temporary Prefect server did not answer within {timeout_s:.0f} s "
                               f"(log: {self.log_path}); set PREFECT_API_URL to use a running one")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log_path.unlink(missing_ok=True)  # its shutdown noise; nothing of the run's

    def _tail(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-2000:]
        except OSError:
            return f"(no log at {self.log_path})"


_server: LocalServer | None = None


def api_configured() -> bool:
    """A Prefect API URL from the environment or the active Prefect profile."""
    from prefect.settings import get_current_settings

    return bool(get_current_settings().api.url)


def start() -> LocalServer:
    """Start the server (returns at once; wait_ready() waits for it) and point this
    process's Prefect settings at it, so Prefect never starts its own."""
    global _server
    if _server is not None:
        return _server
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    _prune_logs()
    fd, log = tempfile.mkstemp(prefix=f"{LOG_PREFIX}{os.getpid()}-", suffix=".log")
    with os.fdopen(fd, "w") as out:
        # Its own session (start_child): a Ctrl-C in the terminal reaches the CLI, which
        # then still has a server to report the interruption to before it stops it.
        process = start_child(
            [sys.executable, "-m", "proofflow.commands.local_prefect", "--port", str(port)],
            stdout=out, stderr=subprocess.STDOUT,
            env={**os.environ, "PREFECT_UI_ENABLED": "0", "PREFECT__SERVER_EPHEMERAL": "1",
                 "PREFECT__SERVER_FINAL": "1"},
        )
    _server = LocalServer(process, port, Path(log))
    atexit.register(_server.stop)
    os.environ["PREFECT_API_URL"] = _server.api_url
    from prefect.context import refresh_global_settings_context

    refresh_global_settings_context()
    return _server


def current() -> LocalServer | None:
    return _server


LOG_PREFIX = "proofflow-prefect-server-"


def _prune_logs() -> None:
    """Remove the logs of servers whose CLI was killed (a clean stop removes its own)."""
    for path in Path(tempfile.gettempdir()).glob(f"{LOG_PREFIX}*.log"):
        pid = path.name[len(LOG_PREFIX):].split("-", 1)[0]
        if pid.isdigit() and not pid_alive(int(pid)):
            path.unlink(missing_ok=True)


# -- the launcher, run as `python -m proofflow.commands.local_prefect` ---------------------


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    import uvicorn

    uvicorn.run("prefect.server.api.server:create_app", factory=True, host="127.0.0.1",
                port=args.port, log_level="error", lifespan="on")


if __name__ == "__main__":
    main()
