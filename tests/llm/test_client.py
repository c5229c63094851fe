"""The model client against the STAND-IN instant server (fault injection) — the real
vLLM server is exercised in test_solve_vllm.py."""

from __future__ import annotations

import socket
import threading

import pytest

from proofflow.config import EndpointConfig, PriceConfig, SamplingConfig
from proofflow.llm.client import EndpointError, ModelClient, Request, _apportion
from proofflow.storage.records import CallRow
from proofflow.testing.instant_server import Behaviour, InstantServer


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

        def counting(url, request, attempt, *rest):  # type: ignore[no-untyped-def]
            nonlocal in_flight, peak
            with lock:
                in_flight += 1
                peak = max(peak, in_flight)
            try:
                return original(url, request, attempt, *rest)
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


# --- calls carried by responses and errors (pure tasks return them) ---

def test_response_and_error_carry_every_attempts_call_rows() -> None:
    with InstantServer(behaviour=Behaviour(model="instant", fail_first=2)) as srv:
        cfg = EndpointConfig(model="instant", base_urls=[srv.base_url], backoff_s=0.01, max_retries=3)
        out = ModelClient(cfg, SamplingConfig(max_tokens=8)).complete(Request("q", n=2, seed=3))
    assert [(c.status, c.attempt) for c in out.calls] == [("error", 0), ("error", 1), ("ok", 2)]
    assert out.calls[-1].call_id == out.call_id and out.calls[-1].completion_tokens == out.completion_tokens

    url = f"http://127.0.0.1:{free_port()}/v1"
    down = ModelClient(EndpointConfig(model="instant", base_urls=[url], backoff_s=0.01, max_retries=1),
                       SamplingConfig(max_tokens=8))
    results = down.complete_many([Request("q", n=1, seed=1)])
    assert isinstance(results[0], EndpointError)
    assert [c.status for c in results[0].calls] == ["error", "error"]


def test_endpoint_error_keeps_its_calls_across_processes() -> None:
    import pickle

    row = CallRow(call_id="c_1", run_id="r", problem_id="p", stage="generate", endpoint="u", model="m",
                  n=1, seed=1, attempt=0, status="error", error="x", prompt_tokens=None,
                  completion_tokens=None, latency_s=0.1, cost=None)
    back = pickle.loads(pickle.dumps(EndpointError("gone", [row])))
    assert str(back) == "gone" and back.calls == [row]


def test_split_requests_keep_the_answered_parts_calls_when_one_fails() -> None:
    with InstantServer(behaviour=Behaviour(model="instant")) as srv:
        cfg = EndpointConfig(model="instant", base_urls=[srv.base_url], supports_n=False,
                             backoff_s=0.01, max_retries=0)
        client = ModelClient(cfg, SamplingConfig(max_tokens=8))
        original = client._call_once
        seen = 0

        def third_fails(url, request, attempt, *rest):  # type: ignore[no-untyped-def]
            nonlocal seen
            seen += 1
            if seen == 3:
                raise EndpointError("HTTP 400", [])
            return original(url, request, attempt, *rest)

        client._call_once = third_fails  # type: ignore[method-assign]
        with pytest.raises(EndpointError) as err:
            client.complete(Request("q", n=3, seed=5))
    assert [c.status for c in err.value.calls] == ["ok", "ok"]


# --- the concurrency hook (a Prefect global limit in the flows) ---

def test_slot_hook_is_held_around_every_attempt() -> None:
    import contextlib

    held: list[str] = []
    inside: list[int] = []

    @contextlib.contextmanager
    def slot(url: str):  # type: ignore[no-untyped-def]
        held.append(url)
        inside.append(1)
        try:
            yield
        finally:
            inside.pop()

    with InstantServer(behaviour=Behaviour(model="instant", fail_first=1)) as srv:
        cfg = EndpointConfig(model="instant", base_urls=[srv.base_url], backoff_s=0.01)
        client = ModelClient(cfg, SamplingConfig(max_tokens=8), slot=slot)
        original = client._call_once

        def checking(*args):  # type: ignore[no-untyped-def]
            assert inside, "HTTP attempt made without holding the slot"
            return original(*args)

        client._call_once = checking  # type: ignore[method-assign]
        client.complete(Request("q", n=1, seed=1))
    assert held == [srv.base_url, srv.base_url]  # the failed attempt and the retry
    assert not inside


# --- time limits: sized from max_tokens, give-up time (issue 12.7) ---

def test_request_timeout_is_sized_from_max_tokens() -> None:
    ep = EndpointConfig(slow_decode_tokens_per_s=4.0, timeout_margin_s=10.0)
    assert ep.request_timeout(400) == pytest.approx(110.0)
    assert ep.give_up_after(400) == pytest.approx(170.0)
    fixed = EndpointConfig(timeout_s=7.0, give_up_s=20.0)
    assert fixed.request_timeout(4000) == 7.0 and fixed.give_up_after(4000) == 20.0
    client = ModelClient(ep, SamplingConfig(max_tokens=400))
    assert client.request_timeout_s == pytest.approx(110.0)


def _start_standin(port: int):  # type: ignore[no-untyped-def]
    """The stand-in as its own process, so it can be frozen with SIGSTOP."""
    import subprocess
    import sys
    import time

    import httpx

    proc = subprocess.Popen([sys.executable, "-m", "proofflow.testing.instant_server", "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/v1/models", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise AssertionError("stand-in server did not start")


def test_frozen_server_is_reported_within_seconds_and_given_up_on() -> None:
    """A SIGSTOPped server: the stall event comes within seconds, the request fails at
    the give-up time (not after 4 retries of a 600 s timeout), every attempt is a row,
    and the recovery is reported once the server answers again."""
    import os
    import signal
    import time

    from proofflow.llm.stall import Stall

    port = free_port()
    proc = _start_standin(port)
    url = f"http://127.0.0.1:{port}/v1"
    stalls: list[tuple[float, Stall]] = []
    try:
        cfg = EndpointConfig(model="instant", base_urls=[url], backoff_s=0.01, max_retries=4,
                             timeout_s=4.0, give_up_s=9.0, stall_after_s=1.0)
        client = ModelClient(cfg, SamplingConfig(max_tokens=8),
                             on_stall=lambda s: stalls.append((time.monotonic(), s)))
        assert client.complete(Request("warm", n=1, seed=1)).choices
        os.kill(proc.pid, signal.SIGSTOP)
        t0 = time.monotonic()
        with pytest.raises(EndpointError) as err:
            client.complete(Request("q", n=2, seed=2))
        waited = time.monotonic() - t0
        assert 8.0 <= waited <= 12.0, waited
        assert "give-up time 9s reached" in str(err.value)
        assert len(err.value.calls) >= 2 and all(c.status == "error" for c in err.value.calls)
        frozen = [(t, s) for t, s in stalls if not s.answering]
        assert frozen, "no stall reported while the server was stopped"
        assert frozen[0][0] - t0 <= 4.5, frozen[0][0] - t0  # stall_after_s + probe + 1 s tick
        assert frozen[0][1].url == url and frozen[0][1].waiting == 1
        assert "does not answer" in frozen[0][1].message()

        os.kill(proc.pid, signal.SIGCONT)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not any(s.answering for _, s in stalls):
            time.sleep(0.2)
        assert any(s.answering for _, s in stalls), "recovery not reported"
        assert client.complete(Request("q", n=1, seed=3)).choices
        client.close()
    finally:
        os.kill(proc.pid, signal.SIGCONT)
        proc.kill()
        proc.wait()
