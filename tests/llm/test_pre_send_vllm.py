"""The row recorded before a request is sent (status `interrupted`, issue 20.14) counts
its prompt tokens with the real vLLM's /tokenize, chat template included: the count
equals the usage the answer then reports."""

from __future__ import annotations

import pytest

from proofflow.config import EndpointConfig, SamplingConfig
from proofflow.llm.client import ModelClient, Request
from proofflow.llm.server import ServerStatus
from proofflow.storage.records import CallRow

pytestmark = pytest.mark.vllm


@pytest.mark.parametrize("api", ["chat", "completions"])
def test_pre_send_row_counts_prompt_tokens_like_the_usage(vllm_server: ServerStatus, api: str) -> None:
    announced: list[CallRow] = []
    cfg = EndpointConfig(model=str(vllm_server.model), base_urls=[vllm_server.base_url], api=api)  # type: ignore[arg-type]
    # counted before sending (0): the count the late counter asks for a call still in flight
    client = ModelClient(cfg, SamplingConfig(max_tokens=4), on_send=announced.append, count_prompt_after_s=0)
    try:
        out = client.complete(Request("Natalia sold 48 clips in April and half as many in May. How many in all?",
                                      n=1, seed=3, system="Answer briefly.", context={"stage": "generate"}))
    finally:
        client.close()
    [row] = announced
    assert row.status == "interrupted" and row.call_id == out.call_id and row.stage == "generate"
    assert "counted by the server's /tokenize" in (row.error or "")
    assert row.prompt_tokens == out.prompt_tokens > 0
    assert row.completion_tokens is None and row.cost is None
