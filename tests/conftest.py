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
    one this fixture started is stopped at the end.
    """
    cfg = _local_server.LocalServerConfig()
    was_running = _local_server.status(config=cfg).running
    _local_server.setup(cfg)
    st = _local_server.start(config=cfg)
    yield st
    if not was_running:
        _local_server.stop(config=cfg)


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
