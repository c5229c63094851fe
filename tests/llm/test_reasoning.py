"""Reasoning kept apart from the answer and counted (llm/reasoning.py, the client's split).

The client tests run against the scripted chat STAND-IN (proofflow/testing/scripted_chat.py)
because they need specific thinking shapes; the real vLLM with a reasoning parser is
tests/agents/test_agents_vllm.py."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from proofflow.config import EndpointConfig, ReasoningConfig, SamplingConfig
from proofflow.llm.client import ModelClient, Request
from proofflow.llm.reasoning import Split, budget_exhausted, count_reasoning, split_reasoning
from proofflow.testing.scripted_chat import Reply, Script, ScriptedChatServer
from proofflow.verifiers.answer import extract_answer


def test_think_tags_split_answer_from_thinking() -> None:
    s = split_reasoning("<think>maybe 41, no: 6*7</think>The answer is \\boxed{42}")
    assert s == Split("The answer is \\boxed{42}", "maybe 41, no: 6*7", False, "tags")


def test_template_opened_thinking_has_only_the_close_tag() -> None:
    s = split_reasoning("so 12 apples</think>\\boxed{13}")
    assert (s.answer, s.reasoning, s.unfinished) == ("\\boxed{13}", "so 12 apples", False)


def test_no_tags_is_no_thinking_unless_the_prompt_opened_it() -> None:
    assert split_reasoning("just \\boxed{3}") == Split("just \\boxed{3}", None, False, "none")
    s = split_reasoning("still thinking about 7", prompt_opens_thinking=True)
    assert (s.answer, s.reasoning, s.unfinished) == ("", "still thinking about 7", True)


def test_thinking_cut_by_length_is_budget_exhausted() -> None:
    s = split_reasoning("<think>let x be 5 and then")
    assert s.answer == "" and s.unfinished and budget_exhausted(s, "length")
    assert not budget_exhausted(s, "stop")
    assert not budget_exhausted(split_reasoning("<think>a</think>b"), "length")


def test_configurable_tags_and_server_split() -> None:
    s = split_reasoning("[[r]]9[[/r]]ok 10", tags=("[[r]]", "[[/r]]"))
    assert (s.answer, s.reasoning) == ("ok 10", "9")
    s = split_reasoning("\\boxed{1}", server_reasoning="thought 2")
    assert (s.answer, s.reasoning, s.source) == ("\\boxed{1}", "thought 2", "server")


def test_counts_in_order_of_trust() -> None:
    splits = [split_reasoning("<think>a b c d</think>e f")]
    assert count_reasoning(splits, [10], 7, None)[0].source == "usage"
    # A parser that cannot count reports 0 beside real thinking: fall through.
    tok = count_reasoning(splits, [10], 0, lambda t: len(t.split()))[0]
    assert (tok.tokens, tok.source) == (4, "tokenize")
    app = count_reasoning(splits, [10], None, lambda t: None)[0]
    assert app.source == "apportioned" and 0 < (app.tokens or 0) < 10
    assert count_reasoning([split_reasoning("no thinking")], [3], None, None)[0].tokens is None


@pytest.fixture()
def script() -> Iterator[tuple[Script, str]]:
    sc = Script()
    with ScriptedChatServer(sc) as srv:
        yield sc, srv.base_url


def _client(base_url: str, model: str = "scripted", **reasoning: object) -> ModelClient:
    return ModelClient(EndpointConfig(model=model, base_urls=[base_url], max_retries=0),
                       SamplingConfig(max_tokens=64), reasoning=ReasoningConfig(**reasoning))  # type: ignore[arg-type]


def test_thinking_with_another_number_never_reaches_the_answer(script: tuple[Script, str]) -> None:
    sc, url = script
    sc.replies = [Reply(content="<think>First guess: \\boxed{17}. Check: wrong.</think>So the answer is \\boxed{42}.")]
    client = _client(url)
    try:
        choice = client.complete(Request(prompt="q", n=1, seed=1)).choices[0]
    finally:
        client.close()
    assert "17" not in choice.text and "17" in (choice.reasoning or "")
    assert extract_answer(choice.text).answer == "42"
    # The scripted server's /tokenize counts words: the thinking has 5.
    assert (choice.reasoning_tokens, choice.reasoning_tokens_source) == (5, "tokenize")


def test_server_split_reasoning_and_usage_count(script: tuple[Script, str]) -> None:
    sc, url = script
    sc.replies = [Reply(content="\\boxed{8}", reasoning="two fours", reasoning_tokens=3)]
    client = _client(url, chat_template_kwargs={"enable_thinking": True})
    try:
        choice = client.complete(Request(prompt="q", n=1, seed=1)).choices[0]
    finally:
        client.close()
    assert (choice.text, choice.reasoning, choice.reasoning_tokens_source) == ("\\boxed{8}", "two fours", "usage")
    assert sc.received[-1]["chat_template_kwargs"] == {"enable_thinking": True}


def test_length_inside_thinking_and_no_tokenizer(script: tuple[Script, str]) -> None:
    sc, url = script
    sc.tokenize = False
    sc.replies = [Reply(content="<think>the sum is 3 + 4 and then we", finish_reason="length")]
    client = _client(url)
    try:
        choices = client.complete(Request(prompt="q", n=2, seed=1)).choices
    finally:
        client.close()
    assert all(c.budget_exhausted and c.text == "" for c in choices)
    assert all(c.reasoning_tokens_source == "apportioned" for c in choices)


def test_reasoning_columns_stored_and_an_old_file_opens(tmp_path: object) -> None:
    """The new sample columns are added to a file made before they existed; a sample's
    thinking and its count come back as stored."""
    from pathlib import Path

    import duckdb

    from proofflow.storage.db import Store
    from proofflow.storage.records import SampleRow

    path = Path(str(tmp_path)) / "old.duckdb"
    con = duckdb.connect(str(path))
    # The samples table as it was before the reasoning columns.
    con.execute("CREATE TABLE samples (sample_id VARCHAR PRIMARY KEY, run_id VARCHAR NOT NULL, "
                "problem_id VARCHAR NOT NULL, stage VARCHAR NOT NULL, parent_id VARCHAR, idx INTEGER NOT NULL, "
                "round INTEGER NOT NULL, call_id VARCHAR, model VARCHAR, endpoint VARCHAR, params JSON, "
                "seed BIGINT, prompt VARCHAR, completion VARCHAR, finish_reason VARCHAR, prompt_tokens INTEGER, "
                "completion_tokens INTEGER, tokens_exact BOOLEAN, latency_s DOUBLE, cost DOUBLE, "
                "created_at TIMESTAMP)")
    con.execute("INSERT INTO samples (sample_id, run_id, problem_id, stage, idx, round, completion) "
                "VALUES ('old', 'r', 'p', 'generate', 0, 0, 'kept')")
    con.close()
    store = Store(path)
    row = SampleRow(sample_id="new", run_id="r", problem_id="p", stage="generate", parent_id=None, idx=1,
                    round=0, call_id=None, model="m", endpoint=None, params=None, seed=None, prompt="q",
                    completion="\\boxed{2}", finish_reason="stop", prompt_tokens=1, completion_tokens=9,
                    tokens_exact=True, latency_s=0.0, cost=None, reasoning="one plus one",
                    reasoning_tokens=3, reasoning_tokens_source="tokenize", budget_exhausted=False)
    store.write([row])
    samples = store.load_run_state("r").problem("p").samples
    assert samples["old"].completion == "kept" and samples["old"].reasoning is None
    new = samples["new"]
    assert (new.reasoning, new.reasoning_tokens, new.reasoning_tokens_source) == ("one plus one", 3, "tokenize")
