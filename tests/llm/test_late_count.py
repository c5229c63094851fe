"""The pre-send row of a call (status `interrupted` until its answer, storage/in_flight.py)
is recorded at once with an estimate; the server counts its prompt tokens only for a call
still in flight `count_prompt_after_s` later (llm/late_count.py). STAND-IN instant server:
its /tokenize counts words, like its usage."""

from __future__ import annotations

import time

from proofflow.config import EndpointConfig, SamplingConfig
from proofflow.llm.client import ModelClient, Request
from proofflow.storage.records import CallRow
from proofflow.testing.instant_server import Behaviour, InstantServer

AFTER_S = 1.0  # well past a quick answer's time on a loaded machine


def _client(url: str, announced: list[CallRow]) -> ModelClient:
    return ModelClient(EndpointConfig(model="instant", base_urls=[url]), SamplingConfig(max_tokens=8),
                       on_send=announced.append, count_prompt_after_s=AFTER_S)


def test_a_quick_call_is_never_counted_and_a_slow_one_is_counted_while_in_flight() -> None:
    announced: list[CallRow] = []
    behaviour = Behaviour(model="instant", slow_requests={2: 3 * AFTER_S})
    with InstantServer(behaviour=behaviour) as srv:
        client = _client(srv.base_url, announced)
        try:
            quick = client.complete(Request("one two three four five six seven eight", n=1, seed=1))
            time.sleep(2 * AFTER_S)  # past the time a late count would have come
            slow = client.complete(Request("nine ten eleven twelve", n=1, seed=2))
            time.sleep(2 * AFTER_S)
        finally:
            client.close()
    assert [r.call_id for r in announced if r.call_id == quick.call_id] == [quick.call_id]
    first = announced[0]
    assert first.status == "interrupted" and "estimated" in (first.error or "")
    rows = [r for r in announced if r.call_id == slow.call_id]
    assert len(rows) == 2, rows  # at once (estimated), then counted while it was held
    assert "estimated" in (rows[0].error or "") and "counted by the server's /tokenize" in (rows[1].error or "")
    assert rows[1].prompt_tokens == slow.prompt_tokens == 4
    assert len(announced) == 3  # nothing after either call's answer


def test_a_count_never_follows_the_final_row() -> None:
    """The count of a call answered while its count is asked is dropped (settle waits for
    a send in progress): a pre-send row after the final row would be stored as a second,
    `interrupted`, row of an answered call."""
    events: list[tuple[str, str]] = []
    behaviour = Behaviour(model="instant", slow_requests={k: AFTER_S + 0.01 for k in range(1, 7)})
    with InstantServer(behaviour=behaviour) as srv:
        client = ModelClient(EndpointConfig(model="instant", base_urls=[srv.base_url], max_concurrency=4),
                             SamplingConfig(max_tokens=8), on_send=lambda r: events.append(("send", r.call_id)),
                             on_call=lambda r: events.append(("final", r.call_id)), count_prompt_after_s=AFTER_S)
        try:
            outs = [client.complete(Request(f"q {k}", n=1, seed=k)) for k in range(6)]
        finally:
            client.close()
    for out in outs:
        kinds = [kind for kind, cid in events if cid == out.call_id]
        assert kinds[-1] == "final" and kinds.count("final") == 1, kinds
