"""Shared pytest fixtures. Each area appends its own section under a header comment."""

from __future__ import annotations

# --- local vLLM server (session) ---
from collections.abc import Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from proofflow.testing.instant_server import InstantServer

import pytest

from proofflow.llm import server as _local_server


@pytest.fixture(scope="session")
def vllm_server() -> Iterator[_local_server.ServerStatus]:
    """The real local vLLM server (SmolLM2-135M-Instruct on CPU), once per test session.

    Sets it up if needed (minutes, the first time on a machine) and starts it on
    $PROOFFLOW_SERVER_PORT (default 8000). A server that was already answering before the
    session is reused and left running, so developers can keep one warm between runs;
    one this fixture started is stopped at the end, and dies with the test process even
    when that is killed with SIGTERM or SIGKILL (issue 20.15: llm/server.py session_server,
    processes.start_child).
    """
    cfg = _local_server.LocalServerConfig()
    _local_server.setup(cfg)
    with _local_server.session_server(cfg) as st:
        yield st


# --- Prefect test harness and the stand-in server (session) ---
import os
from pathlib import Path

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def prefect_api() -> Iterator[str]:
    """A real temporary Prefect server (about 13 s to start), once per session.

    Yields its API URL so subprocesses (the CLI under test) can report to it too.
    """
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    from prefect.settings import PREFECT_API_URL
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield str(PREFECT_API_URL.value())


@pytest.fixture()
def instant_server() -> Iterator[InstantServer]:
    """STAND-IN OpenAI-compatible server (answers at once; fault injection)."""
    from proofflow.testing.instant_server import InstantServer

    with InstantServer() as srv:
        yield srv


@pytest.fixture()
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.fail(f"../shared/data not found at {SHARED_DATA}: tests read the benchmark files from there")
    return SHARED_DATA


# --- the local vLLM server for agents (session; tests/agents, tests/flows/test_agents.py) ---
@pytest.fixture(scope="session")
def agent_vllm() -> Iterator[_local_server.ServerStatus]:
    """The real vLLM (SmolLM2-135M on CPU) with `--enable-auto-tool-choice
    --tool-call-parser hermes --chat-template llm/templates/hermes_tools.jinja
    --reasoning-parser think_text` (llm/agent_server.py), on $PROOFFLOW_AGENT_PORT
    (default 8011), never the shared server's port. One already answering is reused and
    left running; one this fixture started is stopped at the end."""
    from proofflow.llm.agent_server import AGENT_PORT, agent_server_config

    cfg = agent_server_config(int(os.environ.get("PROOFFLOW_AGENT_PORT") or AGENT_PORT))
    _local_server.setup(cfg)
    with _local_server.session_server(cfg) as st:  # dies with the session (issue 20.15)
        yield st
