"""A server started for one test session or command dies with it (issue 20.15: a test
run killed with SIGTERM left the vLLM server its fixture started running, 2.2 GB).

The fixture's code path (llm/server.py session_server, which the `vllm_server` fixture
is) runs in a child Python process with a STAND-IN server command (the instant server
under a name containing "vllm", as the pid checks want): starting real vLLM takes a
minute and 2 GB, and what is tested is the process handling around it. The child is
then killed with SIGTERM (no finally, no atexit) or SIGKILL, and the server must be gone
within seconds. A server started on purpose (`proofflow serve`, owned=False) survives.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

CHILD = r"""
import sys, time
from proofflow.llm import server

cfg = server.LocalServerConfig(served_model_name="vllm-standin")
server.is_set_up = lambda config=None: True  # nothing to install for the stand-in
server._server_command = lambda c: [sys.executable, "-m", "proofflow.testing.instant_server",
                                    "--port", str(c.port), "--model", c.served_model_name]
if sys.argv[1] == "session":
    with server.session_server(cfg) as st:
        print("ready", st.pid, flush=True)
        time.sleep(600)
else:  # started on purpose, like `proofflow serve`
    st = server.start(config=cfg)
    print("ready", st.pid, flush=True)
    time.sleep(600)
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def _group(pgid: int) -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if fields[2] == str(pgid) and fields[0] not in ("Z", "X"):
                found.add(int(entry.name))
    return found


def _start(mode: str, tmp_path: Path) -> tuple[subprocess.Popen[str], int, str]:
    port = _free_port()
    env = {**os.environ, "PROOFFLOW_HOME": str(tmp_path), "PROOFFLOW_SERVER_PORT": str(port)}
    proc = subprocess.Popen([sys.executable, "-c", CHILD, mode], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert proc.stdout is not None
    line = proc.stdout.readline()  # blocks until the stand-in answers /v1/models
    assert line.startswith("ready"), line
    return proc, int(line.split()[1]), f"http://127.0.0.1:{port}/v1"


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_a_session_server_dies_with_its_process(sig: signal.Signals, tmp_path: Path) -> None:
    proc, pid, url = _start("session", tmp_path)
    try:
        members = _group(pid)  # the launcher (group leader) and the server under it
        assert pid in members and len(members) >= 2, members
        assert httpx.get(f"{url}/models", timeout=5).status_code == 200
        started = time.monotonic()
        proc.send_signal(sig)
        proc.wait(timeout=10)
        while any(_alive(p) for p in members) and time.monotonic() - started < 5:
            time.sleep(0.1)
        survivors = [p for p in members if _alive(p)]
        assert not survivors, f"{sig.name} left {survivors} running"
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"{url}/models", timeout=2)
    finally:
        for p in _group(pid):
            os.kill(p, signal.SIGKILL)
        if proc.poll() is None:
            proc.kill()


def test_a_server_started_on_purpose_outlives_its_starter(tmp_path: Path) -> None:
    proc, pid, url = _start("serve", tmp_path)
    try:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)
        time.sleep(1.5)  # longer than the launcher's parent check
        assert _alive(pid)
        assert httpx.get(f"{url}/models", timeout=5).status_code == 200
    finally:
        try:
            os.killpg(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
