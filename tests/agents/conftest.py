"""Fixtures of the agent tests: the real local vLLM server started for agents (tool
calling and a reasoning parser on, the shipped Hermes-style template) on its own port."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from proofflow.llm import server as local_server
from proofflow.llm.agent_server import AGENT_PORT, agent_server_config


@pytest.fixture(scope="session")
def agent_vllm() -> Iterator[local_server.ServerStatus]:
    """The real vLLM (SmolLM2-135M on CPU) with `--enable-auto-tool-choice
    --tool-call-parser hermes --chat-template llm/templates/hermes_tools.jinja
    --reasoning-parser think_text`, on $PROOFFLOW_AGENT_PORT (default 8011), never the
    shared server's port. One already answering is reused and left running; one this
    fixture started is stopped at the end."""
    cfg = agent_server_config(int(os.environ.get("PROOFFLOW_AGENT_PORT") or AGENT_PORT))
    was_running = local_server.status(config=cfg).running
    local_server.setup(cfg)
    st = local_server.start(config=cfg)
    yield st
    if not was_running:
        local_server.stop(config=cfg)
