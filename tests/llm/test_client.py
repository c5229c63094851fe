"""The model client against the STAND-IN instant server (fault injection) — the real
vLLM server is exercised in test_solve_vllm.py."""

from __future__ import annotations

import socket
import threading

import pytest

from proofflow.config import EndpointConfig, PriceConfig, SamplingConfig
from proofflow.llm.client import EndpointError, ModelClient, Request, _apportion
from proofflow.testing.instant_server import Behaviour, InstantServer
from proofflow.storage.records import CallRow


def client_for(urls: list[str], calls: list[CallRow], **endpoint: object) -> ModelClient:
    cfg = EndpointConfig(model="instant", base_urls=urls, backoff_s=0.01, **endpoint)
    return ModelClient(cfg, SamplingConfig(max_tokens=32), on_call=calls.append)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_n_samples_in_one_request_with_usage(instant_server: InstantServer) -> None:
    calls: list[CallRow] = []
    client = client_for([instant_server.base_url], calls)
    out = client.complete(Request("What is 1+1?", n=3, seed=7, context={"run_id": "r", "stage": "generate"}))
    assert len(out.choices) == 3 and all(c.tokens_exact for c in out.choices)
    assert sum(c.completion_tokens for c in out.choices) == out.completion_tokens
    assert instant_server.behaviour.requests == 1
    assert [(c.status, c.n, c.run_id, c.stage) for c in calls] == [("ok", 3, "r", "generate")]
    again = client.complete(Request("What is 1+1?", n=3, seed=7))
    assert [c.text for c in again.choices] == [c.text for c in out.choices]  # seeded


def test_retries_5xx_and_records_every_attempt() -> None:
    calls: list[CallRow] = []
    with InstantServer(behaviour=Behaviour(model="instant", fail_first=2)) as srv:
        out = client_for([srv.base_url], calls, max_retries=3).complete(Request("q", n=1, seed=1))
    assert out.choices
    assert [c.status for c in calls] == ["error", "error", "ok"]
    assert [c.attempt for c in calls] == [0, 1, 2]
    assert "HTTP 500" in (calls[0].error or "")


def test_down_endpoint_fails_after_bounded_retries() -> None:
    calls: list[CallRow] = []
    url = f"http://127.0.0.1:{free_port()}/v1"
    client = client_for([url], calls, max_retries=2, timeout_s=2)
    with pytest.raises(EndpointError) as err:
        client.complete(Request("q", n=1, seed=1))
    assert "unreachable after 3 attempt(s)" in str(err.value) and url in str(err.value)
    assert len(calls) == 3 and all(c.status == "error" for c in calls)


def test_unknown_model_is_not_retried(instant_server: InstantServer) -> None:
    calls: list[CallRow] = []
    cfg = EndpointConfig(model="nope", base_urls=[instant_server.base_url], backoff_s=0.01)
    client = ModelClient(cfg, SamplingConfig(), on_call=calls.append)
    with pytest.raises(EndpointError, match="HTTP 404"):
        client.complete(Request("q", n=1, seed=1))
    assert len(calls) == 1


def test_replicas_share_the_load() -> None:
    calls: list[CallRow] = []
    with InstantServer() as a, InstantServer() as b:
        client = client_for([a.base_url, b.base_url], calls)
        results = client.complete_many([Request(f"q{i}", n=1, seed=i) for i in range(20)])
        assert all(not isinstance(r, Exception) for r in results)
        assert a.behaviour.requests >= 5 and b.behaviour.requests >= 5
        assert a.behaviour.requests + b.behaviour.requests == 20


def test_concurrency_bound_per_replica() -> None:
    in_flight = 0
    peak = 0
    lock = threading.Lock()
    with InstantServer(behaviour=Behaviour(model="instant", delay_s=0.05)) as srv:
        calls: list[CallRow] = []
        client = client_for([srv.base_url], calls, max_concurrency=2)
        original = client._call_once

        def counting(url, request, attempt):  # type: ignore[no-untyped-def]
            nonlocal in_flight, peak
            with lock:
                in_flight += 1
                peak = max(peak, in_flight)
            try:
                return original(url, request, attempt)
            finally:
                with lock:
                    in_flight -= 1

        client._call_once = counting  # type: ignore[method-assign]
        client.complete_many([Request(f"q{i}", n=1, seed=i) for i in range(8)])
    assert peak == 2


def test_without_n_support_requests_are_split(instant_server: InstantServer) -> None:
    calls: list[CallRow] = []
    client = client_for([instant_server.base_url], calls, supports_n=False)
    out = client.complete(Request("q", n=3, seed=10))
    assert len(out.choices) == 3 and instant_server.behaviour.requests == 3
    assert [c.seed for c in calls] == [10, 11, 12]


def test_cost_from_token_prices_and_gpu_hours(instant_server: InstantServer) -> None:
    calls: list[CallRow] = []
    priced = client_for([instant_server.base_url], calls,
                        price=PriceConfig(input_per_mtok=1.0, output_per_mtok=2.0))
    out = priced.complete(Request("q", n=2, seed=1))
    assert out.cost == pytest.approx((out.prompt_tokens * 1.0 + out.completion_tokens * 2.0) / 1e6)
    gpu = client_for([instant_server.base_url], calls, price=PriceConfig(gpu_hour=3600.0), max_concurrency=4)
    out = gpu.complete(Request("q", n=1, seed=1))
    assert out.cost == pytest.approx(out.latency_s / 4, rel=0.5)
    unpriced = client_for([instant_server.base_url], calls).complete(Request("q", n=1, seed=1))
    assert unpriced.cost is None


def test_apportioning_keeps_the_total() -> None:
    choices = _apportion([("a" * 10, "stop", None), ("b" * 30, "length", None)], 41)
    assert sum(c.completion_tokens for c in choices) == 41
    assert not any(c.tokens_exact for c in choices)
    assert choices[1].completion_tokens > choices[0].completion_tokens
