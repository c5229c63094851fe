"""The give-up time of a model request holds per request, and a frozen endpoint is sent
nothing more once declared frozen (issue 20.4: a frozen server was given up on after
752 s where the docs promise 346 s, and requests kept going to it after the first give-up).

Against the STAND-IN instant server in its freeze mode (every request, the health probe
included, hangs like a SIGSTOPped server's); the stand-in counts what it received.
"""

from __future__ import annotations

import threading
import time

from proofflow.config import EndpointConfig, SamplingConfig
from proofflow.llm.client import EndpointError, ModelClient, Request
from proofflow.testing.instant_server import Behaviour, InstantServer

GIVE_UP_S = 6.0  # past the stall watch (0.5 s + a 1 s tick + a 0.5 s probe) even on a loaded machine
SLACK_S = 1.5  # thread start, the last attempt's socket close, a loaded 2-core machine


def _client(urls: list[str], **endpoint: object) -> ModelClient:
    cfg = EndpointConfig(model="instant", base_urls=urls, backoff_s=0.05, max_retries=4, timeout_s=2.0,
                         give_up_s=GIVE_UP_S, stall_after_s=0.5, **endpoint)  # type: ignore[arg-type]
    return ModelClient(cfg, SamplingConfig(max_tokens=8))


def _timed(client: ModelClient, request: Request) -> tuple[float, str]:
    started = time.monotonic()
    try:
        client.complete(request)
        outcome = "ok"
    except EndpointError as exc:
        outcome = str(exc)
    return time.monotonic() - started, outcome


def test_each_request_gives_up_in_time_and_the_frozen_endpoint_gets_nothing_more() -> None:
    behaviour = Behaviour(model="instant")
    with InstantServer(behaviour=behaviour) as srv:
        # 2 slots, 6 requests at once: 4 of them queue for a slot, which counts too
        client = _client([srv.base_url], max_concurrency=2)
        assert client.complete(Request("warm", n=1, seed=0)).choices
        behaviour.freeze()
        results: list[tuple[float, str]] = []
        lock = threading.Lock()

        def one(i: int) -> None:
            took = _timed(client, Request(f"q{i}", n=1, seed=i))
            with lock:
                results.append(took)

        threads = [threading.Thread(target=one, args=(i,)) for i in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert len(results) == 6
        assert all(outcome != "ok" for _, outcome in results)
        longest = max(took for took, _ in results)
        assert longest <= GIVE_UP_S + SLACK_S, sorted(took for took, _ in results)

        # declared frozen: later requests fail at once with the same line, and reach nothing
        assert list(client.frozen()) == [srv.base_url]
        frozen_line = client.frozen()[srv.base_url]
        assert all(frozen_line in outcome for _, outcome in results if "attempt(s)" in outcome)
        received = behaviour.received
        declared_at = time.monotonic()
        for i in range(5):
            took, outcome = _timed(client, Request(f"later{i}", n=1, seed=100 + i))
            assert took < 1.0 and frozen_line in outcome, (took, outcome)
        assert behaviour.received == received
        assert not [t for t in behaviour.received_at if t >= declared_at]

        # it answers again: the health probe notices, and requests go to it again
        behaviour.thaw()
        deadline = time.monotonic() + 10
        while client.frozen() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not client.frozen()
        assert client.complete(Request("back", n=1, seed=7)).choices
        client.close()


def test_split_requests_share_one_give_up_time() -> None:
    """A server without `n` gets n single requests: together they are one request, with
    one give-up time (each had its own before)."""
    behaviour = Behaviour(model="instant")
    with InstantServer(behaviour=behaviour) as srv:
        client = _client([srv.base_url], supports_n=False)
        behaviour.freeze()
        took, outcome = _timed(client, Request("q", n=3, seed=1))
        assert outcome != "ok"
        assert took <= GIVE_UP_S + SLACK_S, took
        client.close()


def test_a_frozen_replica_is_left_for_the_other() -> None:
    frozen, healthy = Behaviour(model="instant"), Behaviour(model="instant")
    with InstantServer(behaviour=frozen) as a, InstantServer(behaviour=healthy) as b:
        client = _client([a.base_url, b.base_url], max_concurrency=1)
        frozen.freeze()
        # until A is declared frozen, a request that meets it moves to B after its timeout
        for i in range(6):
            took, outcome = _timed(client, Request(f"q{i}", n=1, seed=i))
            assert outcome == "ok" and took <= GIVE_UP_S + SLACK_S, (took, outcome)
        assert list(client.frozen()) == [a.base_url]
        received = frozen.received
        for i in range(6):
            took, outcome = _timed(client, Request(f"r{i}", n=1, seed=50 + i))
            assert outcome == "ok" and took < 1.0, (took, outcome)
        assert frozen.received == received
        client.close()


def test_give_up_counts_from_complete_many_submission() -> None:
    """complete_many: a request still waiting for a pool thread has its clock running."""
    behaviour = Behaviour(model="instant")
    with InstantServer(behaviour=behaviour) as srv:
        client = _client([srv.base_url], max_concurrency=1)
        behaviour.freeze()
        started = time.monotonic()
        out = client.complete_many([Request(f"q{i}", n=1, seed=i) for i in range(4)])
        took = time.monotonic() - started
        assert all(isinstance(r, EndpointError) for r in out)
        assert took <= GIVE_UP_S + SLACK_S, took
        client.close()
