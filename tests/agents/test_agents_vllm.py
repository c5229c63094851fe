"""The agent engine and the reasoning split against the REAL vLLM server (SmolLM2-135M on
CPU) started with tool calling and a reasoning parser (tests/agents/conftest.py). The
135M model rarely uses a tool well: these tests assert on structure and bookkeeping —
the server's split and counts, what was sent versus what is stored, the prefix."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from proofflow.agents.episode import Caps, conversation, load_episode
from proofflow.agents.inprocess import drive
from proofflow.agents.standard_tools import RUN_PYTHON, python_executor
from proofflow.config import EndpointConfig, ReasoningConfig, SamplingConfig
from proofflow.llm import server as local_server
from proofflow.llm.client import ModelClient, Request
from proofflow.testing.recording_proxy import RecordingProxy

pytestmark = [pytest.mark.vllm, pytest.mark.slow]

RUN, PID = "r_vllm", "p_vllm"
TOOLS = {RUN_PYTHON.name: RUN_PYTHON}

MODEL = "smollm2-135m-instruct"


def _client(base_url: str, max_tokens: int, **reasoning: object) -> ModelClient:
    return ModelClient(EndpointConfig(model=MODEL, base_urls=[base_url], max_retries=1),
                       SamplingConfig(max_tokens=max_tokens, temperature=0.7),
                       reasoning=ReasoningConfig(**reasoning))  # type: ignore[arg-type]


def test_server_split_thinking_cut_by_length_is_counted_with_tokenize(
        agent_vllm: local_server.ServerStatus) -> None:
    """enable_thinking opens the think block in the prompt (the shipped template); the
    server's parser returns the output as `reasoning`; 16 tokens end inside it: no answer,
    budget_exhausted; the server's usage says 0 reasoning tokens (the plugin cannot count),
    so the count comes from the server's /tokenize."""
    client = _client(agent_vllm.base_url, 16, chat_template_kwargs={"enable_thinking": True})
    try:
        response = client.complete(Request(prompt="What is 12 + 30?", n=1, seed=7))
    finally:
        client.close()
    (choice,) = response.choices
    assert choice.finish_reason == "length" and choice.text == ""
    assert choice.reasoning and choice.budget_exhausted
    assert choice.reasoning_tokens_source == "tokenize"
    assert 0 < (choice.reasoning_tokens or 0) <= choice.completion_tokens == 16


def test_without_thinking_the_answer_is_all_content(agent_vllm: local_server.ServerStatus) -> None:
    client = _client(agent_vllm.base_url, 12)
    try:
        (choice,) = client.complete(Request(prompt="Say hello.", n=1, seed=3)).choices
    finally:
        client.close()
    assert choice.text and choice.reasoning is None and not choice.budget_exhausted


@pytest.fixture()
def proxy(agent_vllm: local_server.ServerStatus) -> Iterator[RecordingProxy]:
    with RecordingProxy(agent_vllm.base_url) as p:
        yield p


def test_episode_on_the_real_server_stored_as_sent_with_a_stable_prefix(proxy: RecordingProxy) -> None:
    """A text-protocol episode (the model's ```python blocks run in the real sandbox):
    every turn stored with its prompt tokens; the conversation rebuilt from the rows
    equals what the server received; each request's rendered prompt (the server's own
    template, via /tokenize) is a token prefix of the next one's."""
    client = _client(proxy.base_url, 40)
    opening = [{"role": "system", "content": "Answer by writing a Python program in a ```python block."},
               {"role": "user", "content": "Write Python that prints the sum of the numbers from 1 to 10."}]
    try:
        stored = drive(client, Caps(protocol="text", max_turns=3, max_tokens_per_turn=40), opening, TOOLS,
                       {"run_python": python_executor(10.0)}, RUN, PID)
    finally:
        client.close()
    turns = sorted((s for s in stored.samples.values() if s.stage == "turn"), key=lambda s: s.round)
    assert len(turns) == len(proxy.chat_requests) >= 1
    assert all((t.prompt_tokens or 0) > 0 and t.call_id for t in turns)
    assert stored.ended is not None and stored.ended.turns == len(turns)
    episode = load_episode(RUN, PID, 0, stored.samples, stored.runs, stored.ended)
    rebuilt = conversation(episode, "text")
    for i, body in enumerate(proxy.chat_requests):
        assert rebuilt[:len(body["messages"])] == body["messages"], f"request {i} differs from the stored rows"
        assert body["messages"][-1]["role"] == "user"
    root = proxy.base_url.removesuffix("/v1")
    token_lists = [httpx.post(root + "/tokenize", json={"model": MODEL, "messages": body["messages"],
                                                         "add_generation_prompt": True}, timeout=60).json()["tokens"]
                   for body in proxy.chat_requests]
    for before, after in zip(token_lists, token_lists[1:]):
        assert after[:len(before)] == before, "the re-sent conversation changed: the prefix cache would miss"
    # With this seed the model writes a ```python block, so the episode went on after a tool ran.
    assert len(turns) >= 2 and stored.runs
