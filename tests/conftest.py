"""Shared pytest fixtures. Each area appends its own section under a header comment."""

from __future__ import annotations

# --- local vLLM server (session) ---
from collections.abc import Iterator

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
