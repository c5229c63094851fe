"""The CLI and Prefect, as a user runs it (real subprocesses, a real Prefect server, the
STAND-IN instant model server): INFO logs reach the API but not the terminal (issue 11.2),
a failed run is one clear message (11.3, 12.8), a run without a configured Prefect server
prints no Prefect noise and leaves no server behind, also when killed (12.1)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from proofflow.problems import example_path
from proofflow.testing.instant_server import Behaviour, InstantServer

pytestmark = pytest.mark.prefect


def env_for(api: str | None, home: Path) -> dict[str, str]:
    """The user's environment: no Prefect logging settings of the test session; a Prefect
    server at `api`, or none configured at all (then PREFECT_HOME is a fresh folder)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_") and k != "COLUMNS"}
    env["PREFECT_HOME"] = str(home)
    if api:
        env["PREFECT_API_URL"] = api
    return env


def run_cli(env: dict[str, str], *args: str, cwd: Path, timeout: float = 400) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "proofflow.cli", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


def lines(out: subprocess.CompletedProcess) -> list[str]:
    return (out.stdout + out.stderr).splitlines()


def flow_run_of(api: str, run_name: str) -> dict:
    runs = httpx.post(f"{api}/flow_runs/filter", json={"limit": 200, "offset": 0}, timeout=30).json()
    mine = [r for r in runs if run_name in r["name"]]
    assert len(mine) == 1, [r["name"] for r in runs]
    return mine[0]


def test_cli_run_sends_info_logs_to_the_api_and_none_to_the_terminal(prefect_api: str, tmp_path: Path) -> None:
    with InstantServer(behaviour=Behaviour(fail_first=1)) as srv:  # one HTTP 500: one retry
        out = run_cli(env_for(prefect_api, tmp_path / "home"), "solve", str(example_path()), "--base-url",
                      srv.base_url, "--model", "instant", "-n", "2", "--limit", "3", "--run", "logs-to-api",
                      cwd=tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "INFO" not in out.stdout + out.stderr
    assert len(lines(out)) <= 12, out.stdout + out.stderr

    flow_run = flow_run_of(prefect_api, "logs-to-api")
    logs: list[dict] = []
    deadline = time.monotonic() + 30  # the log worker flushes every couple of seconds
    while time.monotonic() < deadline:
        logs = httpx.post(f"{prefect_api}/logs/filter", timeout=30, json={
            "logs": {"flow_run_id": {"any_": [flow_run["id"]]}}, "limit": 200, "offset": 0}).json()
        if any("3 to do" in log["message"] for log in logs) and any("retry" in log["message"] for log in logs):
            break
        time.sleep(1)
    info = [log["message"] for log in logs if log["level"] == 20]
    # the run's start line (problems / already done / to do) and per-stage task lines
    assert any("logs-to-api" in m and "3 to do" in m for m in info), info
    assert sum(1 for log in logs if log["task_run_id"]) >= 3, info
    # the model client's retry (a proofflow logger, not Prefect's), at WARNING
    assert any("retry 1/" in log["message"] and log["level"] == 30 for log in logs), logs


def test_failed_run_is_one_clear_error_with_log_and_resume_command(prefect_api: str, tmp_path: Path) -> None:
    env = env_for(prefect_api, tmp_path / "home")
    env["PROOFFLOW_ENDPOINT__MAX_RETRIES"] = "0"
    with InstantServer(behaviour=Behaviour(fail_first=10**6)) as srv:  # every request: HTTP 500
        out = run_cli(env, "solve", str(example_path()), "--base-url", srv.base_url, "--model", "instant",
                      "-n", "2", "--limit", "6", "--run", "fails", cwd=tmp_path)
    text = out.stdout + out.stderr
    assert out.returncode == 1, text
    assert len(lines(out)) <= 10, text
    assert "Traceback" not in text and "Error flushing" not in text
    assert text.count("error:") == 1 and "HTTP 500" in text, text
    [log_line] = [ln for ln in lines(out) if ln.startswith("Full log: ")]
    log = tmp_path / log_line.removeprefix("Full log: ").strip()
    assert log.is_file() and "Traceback" in log.read_text(), log
    assert "to resume, run the same command" in text
    assert "proofflow solve " in text and "--run fails" in text


def _descendants(pid: int) -> set[int]:
    """Every live process below `pid`, from /proc (ppid is field 4 of /proc/<pid>/stat)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def _prefect_servers(pid: int) -> set[int]:
    """The processes below `pid` that serve Prefect's API (Prefect's own temporary server
    runs `uvicorn ... prefect.server.api.server:create_app`; proofflow's runs
    `proofflow.commands.local_prefect`). Other helpers (verifier pools) are not counted."""
    found = set()
    for p in _descendants(pid):
        try:
            cmdline = Path(f"/proc/{p}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if "prefect" in cmdline:
            found.add(p)
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"  # a zombie holds no memory; only its parent's reaping is missing


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_killed_cli_leaves_no_prefect_server_behind(sig: signal.Signals, tmp_path: Path) -> None:
    """No Prefect API configured: the CLI's temporary server must die with the CLI."""
    with InstantServer(behaviour=Behaviour(delay_s=0.5)) as srv:
        cli = subprocess.Popen(
            [sys.executable, "-m", "proofflow.cli", "solve", str(example_path()), "--base-url", srv.base_url,
             "--model", "instant", "-n", "4", "--run", "killed"],
            cwd=tmp_path, env=env_for(None, tmp_path / "home"),
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 240
            while srv.behaviour.received == 0:  # the flow is running: the server is up
                assert cli.poll() is None, "the CLI ended before its first model request"
                assert time.monotonic() < deadline, "no model request within 240 s"
                time.sleep(0.2)
            below = _prefect_servers(cli.pid)
            assert below, "the CLI started no Prefect server process"
            cli.send_signal(sig)
            cli.wait(timeout=30)
        finally:
            if cli.poll() is None:
                cli.kill()
        deadline = time.monotonic() + 20
        while any(_alive(p) for p in below) and time.monotonic() < deadline:
            time.sleep(0.2)
        survivors = [p for p in below if _alive(p)]
        for p in survivors:  # do not leave them to the rest of the session
            os.kill(p, signal.SIGKILL)
        assert not survivors, f"{sig.name} of the CLI left {len(survivors)} process(es) running"


@pytest.mark.slow
def test_run_without_a_prefect_server_prints_no_prefect_noise_and_stops_its_server(tmp_path: Path) -> None:
    """Issue 12.8: 40 problems used to print ~150 lines of "Error flushing ... CancelledError"
    from Prefect's temporary server as it stopped."""
    data = tmp_path / "forty.jsonl"
    data.write_text("".join(f'{{"id": "p{i}", "problem": "What is {i} + 1?", "answer": "{i + 1}"}}\n'
                            for i in range(40)))
    with InstantServer() as srv:
        cli = subprocess.Popen(
            [sys.executable, "-m", "proofflow.cli", "solve", str(data), "--base-url", srv.base_url,
             "--model", "instant", "-n", "4", "--run", "quiet"],
            cwd=tmp_path, env=env_for(None, tmp_path / "home"), text=True,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        below: set[int] = set()
        while cli.poll() is None and not below:
            below = _prefect_servers(cli.pid)
            time.sleep(0.2)
        stdout, stderr = cli.communicate(timeout=400)
    assert cli.returncode == 0, stdout + stderr
    assert "Error flushing" not in stdout + stderr and "Traceback" not in stdout + stderr
    assert len((stdout + stderr).splitlines()) <= 12, stdout + stderr
    assert "40/40" in stdout
    assert not [p for p in below if _alive(p)], "the temporary Prefect server outlived the CLI"
