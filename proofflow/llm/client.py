"""The one place proofflow calls a model: OpenAI-compatible servers (vLLM's).

Every HTTP attempt, successful or not, becomes a `CallRow`: a `Response` (and an
`EndpointError`) carries the rows of every attempt it made (`.calls`), so a stage task can
return them for the flow to store, and the database records tokens and latency of failed
and retried calls too. (`on_call`, if given, also sees each row as it is made.)

Hooks keep this module free of Prefect: `slot(url)` is held around each HTTP attempt
(the flows pass a Prefect global concurrency slot when many processes share an endpoint,
tasks/resources.py), and `on_stall` hears when requests wait on a server that has stopped
answering (the CLI's progress bar shows it).

Time limits (docs/configuration.md): one attempt may take `EndpointConfig.request_timeout`
(sized from max_tokens at a slow decode rate unless `timeout_s` is set); one request gives
up after `EndpointConfig.give_up_after` seconds of its own time — every attempt, the
backoff between them and the split requests of a server without `n` included, but not
its wait for a concurrency slot: queueing behind a server that keeps answering is not a
reason to give up (a slow CPU server's demo stopped with "no concurrency slot came free
in time" although the server was answering: issue 19.4). A queued request gives up only
when the base URL has answered nothing for a whole give-up time while it waited (hung),
so a hung server still fails the run within about one give-up time. A base URL on which
a request gave up while the stall watcher found it not answering is declared frozen:
later requests are not sent to it (another replica takes them, or they fail at once with
the same line) until it answers a health probe again.

Before an attempt is sent, a row for it (status `interrupted`, its prompt tokens) goes to
`on_send` (default: the process's BatchWriter, storage/in_flight.py), so a process killed
while the request is in flight still leaves a `calls` row for what the server was asked
to do; the attempt's final row (same call_id) replaces it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import logging
import random
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

import httpx
import openai

from proofflow.config import EndpointConfig, ReasoningConfig, SamplingConfig
from proofflow.llm import reasoning as thinking
from proofflow.llm.late_count import LateCount
from proofflow.llm.stall import Stall, StallWatcher
from proofflow.storage import in_flight
from proofflow.storage.records import CallRow

log = logging.getLogger(__name__)

RETRYABLE_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}


class EndpointError(RuntimeError):
    """A model call failed for good (after retries, or with a non-retryable status).

    `calls`: the CallRow of every attempt made, so the failed attempts are stored too."""

    def __init__(self, message: str, calls: Sequence[CallRow] = ()):
        super().__init__(message)
        self.calls: list[CallRow] = list(calls)

    def __reduce__(self) -> tuple[Any, ...]:
        # Crosses process boundaries (a Dask / Ray worker's task raising it).
        return (type(self), (str(self), self.calls))


@dataclass(frozen=True)
class Request:
    """One model call: a prompt and how many samples of it to draw."""

    prompt: str
    n: int
    seed: int
    # Attached to the CallRow so SQL can tell which run/problem/stage paid for the call.
    context: dict[str, Any] = field(default_factory=dict)
    system: str | None = None
    # A conversation (OpenAI chat messages) instead of system + prompt, optional OpenAI
    # tool definitions, and a per-request max_tokens (an agent turn's budget): agents/.
    messages: list[dict[str, Any]] | None = None
    tools: list[dict[str, Any]] | None = None
    max_tokens: int | None = None
    # Ask for each choice's log-probability (the sum over its tokens): a step prover's
    # search ranks tactics by it (proofflow/search/).
    logprobs: bool = False


@dataclass(frozen=True)
class Choice:
    text: str
    finish_reason: str | None
    completion_tokens: int
    tokens_exact: bool  # False when apportioned from the request's total
    # The thinking, kept apart from `text` (the answer) by llm/reasoning.py.
    reasoning: str | None = None
    reasoning_tokens: int | None = None
    reasoning_tokens_source: str | None = None  # usage | tokenize | apportioned
    budget_exhausted: bool = False  # stopped on length inside the thinking
    tool_calls: list[dict[str, Any]] | None = None  # the answer's OpenAI tool calls, as returned
    logprob: float | None = None  # sum of the answer's token log-probabilities (Request.logprobs)


@dataclass(frozen=True)
class Response:
    call_id: str
    endpoint: str
    model: str
    seed: int
    choices: list[Choice]
    prompt_tokens: int
    completion_tokens: int
    latency_s: float
    cost: float | None
    # One row per HTTP attempt this response took (failed retries included).
    calls: list[CallRow] = field(default_factory=list)


SlotHook = Callable[[str], AbstractContextManager[Any]]


class ModelClient:
    """Calls one model across its replicas, bounded, with retries and accounting."""

    def __init__(
        self,
        endpoint: EndpointConfig,
        sampling: SamplingConfig,
        on_call: Callable[[CallRow], None] | None = None,
        slot: SlotHook | None = None,
        on_stall: Callable[[Stall], None] | None = None,
        reasoning: ReasoningConfig | None = None,
        on_send: Callable[[CallRow], None] | None = None,
        count_prompt_after_s: float = 1.0,
    ):
        self.endpoint = endpoint
        # Hears each attempt before it is sent (status `interrupted` until its answer).
        self._on_send = on_send
        # Its prompt tokens are counted by the server for calls still in flight this long
        # after they were sent (llm/late_count.py); 0: counted before sending, on its path.
        self._late_count = LateCount(count_prompt_after_s)
        self.sampling = sampling
        self.reasoning = reasoning or ReasoningConfig()
        # One per replica, made on first use: counts thinking tokens the usage did not.
        self._tokenizers: dict[str, thinking.ServerTokenizer] = {}
        self.on_call = on_call or (lambda row: None)
        # Held around every HTTP attempt, inside the per-process semaphore (so a process
        # never holds a global slot while it waits for one of its own).
        self._slot: SlotHook = slot or (lambda url: contextlib.nullcontext())
        self.on_stall = on_stall
        self.request_timeout_s = endpoint.request_timeout(sampling.max_tokens)
        self.give_up_s = endpoint.give_up_after(sampling.max_tokens)
        self._clients = {
            url: openai.OpenAI(
                base_url=url, api_key=endpoint.api_key, timeout=self.request_timeout_s, max_retries=0
            )
            for url in endpoint.base_urls
        }
        # url -> {attempt token: start time}: what the stall watcher looks at.
        self._waiting: dict[str, dict[int, float]] = {url: {} for url in endpoint.base_urls}
        self._waiting_ids = itertools.count()
        self._watcher: StallWatcher | None = None
        self._slots = {url: threading.BoundedSemaphore(endpoint.max_concurrency) for url in endpoint.base_urls}
        # url -> time.monotonic() of its last HTTP answer (any status): a request waiting
        # for a slot keeps waiting while this is recent (the server answers, only busy).
        self._answered: dict[str, float] = {}
        self._in_flight = {url: 0 for url in endpoint.base_urls}
        # url -> the line a request gave up with: a frozen base URL is sent nothing more
        # until the stall watcher finds it answering again.
        self._frozen: dict[str, str] = {}
        self._no_tokenize: set[str] = set()  # servers without vLLM's /tokenize
        # One connection pool for /tokenize: httpx.post builds a client, SSL context and CA
        # bundle included, per call (~20 ms idle, 150-370 ms on a loaded 2-core box), once per
        # turn of every agent episode (bench/bench_agent.py's profile).
        self._tokenize_http = httpx.Client()
        self._pick_lock = threading.Lock()
        self._round_robin = itertools.count()
        self._pool = ThreadPoolExecutor(
            max_workers=endpoint.max_concurrency * len(endpoint.base_urls),
            thread_name_prefix="proofflow-llm",
        )

    def close(self) -> None:
        if self._watcher is not None:
            self._watcher.stop()
        self._late_count.close()
        self._pool.shutdown(wait=False, cancel_futures=True)
        for client in self._clients.values():
            client.close()
        self._tokenize_http.close()

    # -- public ------------------------------------------------------------------

    def sampling_params(self) -> dict[str, Any]:
        s = self.sampling
        return {"max_tokens": s.max_tokens, "temperature": s.temperature, "top_p": s.top_p, "stop": s.stop or None}

    def complete(self, request: Request, give_up_at: float | None = None) -> Response:
        """One request (retried on transient failures). Raises EndpointError.

        `give_up_at` (time.monotonic()): when it fails at the latest, not counting its
        waits for a concurrency slot (module doc); default: the give-up time from now."""
        clock = _Clock(time.monotonic() + self.give_up_s if give_up_at is None else give_up_at)
        # vLLM rejects n > 1 with greedy sampling (temperature 0): ask one at a time.
        if request.n > 1 and (not self.endpoint.supports_n or self.sampling.temperature == 0):
            return self._merge_singles(request, clock)
        return self._call_with_retries(request, clock)

    def complete_many(self, requests: Sequence[Request]) -> list[Response | EndpointError]:
        """Run requests concurrently (bounded per replica); errors are returned in place.
        Each request's give-up time counts from now, its wait for a thread included."""
        give_up_at = time.monotonic() + self.give_up_s

        def run(req: Request) -> Response | EndpointError:
            try:
                return self.complete(req, give_up_at)
            except EndpointError as exc:
                return exc

        return list(self._pool.map(run, requests))

    def frozen(self) -> dict[str, str]:
        """Base URLs declared frozen now -> the line their give-up said."""
        with self._pick_lock:
            return dict(self._frozen)

    # -- internals ---------------------------------------------------------------

    def _merge_singles(self, request: Request, clock: _Clock) -> Response:
        """For servers without `n`: n requests with consecutive seeds, merged (one give-up
        time for all of them: they are one request to the caller)."""
        parts: list[Response] = []
        for i in range(request.n):
            try:
                parts.append(self._call_with_retries(
                    dataclasses.replace(request, n=1, seed=request.seed + i), clock))
            except EndpointError as exc:
                # The answered parts were paid for: their calls go with the error.
                raise EndpointError(str(exc), [c for p in parts for c in p.calls] + exc.calls) from exc
        return Response(
            call_id=parts[0].call_id,
            endpoint=parts[0].endpoint,
            model=parts[0].model,
            seed=request.seed,
            choices=[c for p in parts for c in p.choices],
            prompt_tokens=sum(p.prompt_tokens for p in parts),
            completion_tokens=sum(p.completion_tokens for p in parts),
            latency_s=sum(p.latency_s for p in parts),
            cost=None if any(p.cost is None for p in parts) else sum(p.cost for p in parts),  # type: ignore[misc]
            calls=[c for p in parts for c in p.calls],
        )

    def _pick_replica(self) -> str | None:
        """The least busy replica not declared frozen (None: all are)."""
        with self._pick_lock:
            urls = [u for u in self.endpoint.base_urls if u not in self._frozen]
            if not urls:
                return None
            start = next(self._round_robin) % len(urls)
            order = urls[start:] + urls[:start]
            url = min(order, key=lambda u: self._in_flight[u])
            self._in_flight[url] += 1
            return url

    def _acquire(self, url: str, clock: _Clock) -> bool:
        """Wait for a concurrency slot of `url`; True when one is held. The wait is not
        the request's own time while `url` answers (its clock is moved on by that part):
        it fails when `url` is declared frozen, or has answered nothing for a whole
        give-up time while this request waited (hung: module doc)."""
        slots = self._slots[url]
        if url in self._frozen:
            return False
        if slots.acquire(blocking=False):  # the common case: no wait, nothing to count
            return True
        started = time.monotonic()
        while True:
            now = time.monotonic()
            if url in self._frozen or now - max(started, self._answered.get(url, started)) >= self.give_up_s:
                return False
            if slots.acquire(timeout=0.25):
                if url in self._frozen:  # declared while we waited
                    slots.release()
                    return False
                clock.extend(self._answering_since(url, started))
                return True

    def _answering_since(self, url: str, started: float) -> float:
        """How much of a wait since `started` the server is known to have been answering
        (up to its last answer): the part of a queue wait that is not the request's own
        time. A hung server's wait counts in full, so its requests still give up in time."""
        return max(0.0, self._answered.get(url, started) - started)

    def _declare_frozen(self, url: str) -> None:
        """An attempt at `url` got no answer in time: if the stall watcher finds it not
        answering its health probe either (frozen, not merely slow), stop sending to it."""
        watcher = self._watcher
        if watcher is None or not watcher.not_answering(url):
            return
        with self._pick_lock:
            if url not in self._frozen:
                self._frozen[url] = (f"{url} does not answer (an attempt timed out and its health probe "
                                     "failed): nothing more is sent to it until it answers again")
                log.error("%s", self._frozen[url])

    def _any_unfrozen(self) -> bool:
        return any(u not in self._frozen for u in self.endpoint.base_urls)

    def _on_stall_event(self, stall: Stall) -> None:
        if stall.answering:
            with self._pick_lock:
                self._frozen.pop(stall.url, None)
        if self.on_stall is not None:
            self.on_stall(stall)

    def _release(self, url: str) -> None:
        with self._pick_lock:
            self._in_flight[url] -= 1

    def _call_with_retries(self, request: Request, clock: _Clock) -> Response:
        attempts = self.endpoint.max_retries + 1
        last_error = ""
        tried: list[str] = []
        calls: list[CallRow] = []
        made = 0
        timed_out = False
        hung = False
        for attempt in range(attempts):
            if clock.left() <= 0:
                break
            url = self._pick_replica()
            if url is None:  # every replica is declared frozen
                break
            tried.append(url)
            try:
                if not self._acquire(url, clock):
                    if url in self._frozen:
                        continue  # frozen meanwhile: another replica may take it
                    hung = True  # answered nothing for a give-up time while we queued
                    break
                try:
                    waiting_since = time.monotonic()
                    with self._slot(url):
                        # A shared endpoint's slot (Prefect's, taken in blocks): queueing too.
                        clock.extend(self._answering_since(url, waiting_since))
                        left = clock.left()
                        if left <= 0:
                            break
                        made += 1
                        # Each attempt gets only what is left of the give-up time.
                        return self._call_once(url, request, attempt, calls, min(self.request_timeout_s, left))
                finally:
                    self._slots[url].release()
            except _Retryable as exc:
                last_error = str(exc)
                timed_out = exc.timed_out
                if timed_out and len(self.endpoint.base_urls) > 1:
                    # Another replica can take the retry: move off a frozen one at once.
                    # (With one replica the retries go on until the give-up time: a server
                    # may come back, e.g. a SIGSTOPped one continued.)
                    self._declare_frozen(url)
                if attempt + 1 < attempts and clock.left() > 0 and self._any_unfrozen():
                    delay = self.endpoint.backoff_s * (2**attempt) * (1 + 0.25 * random.random())
                    delay = min(delay, max(0.0, clock.left()))
                    log.warning("model call to %s failed (%s); retry %d/%d in %.1fs",
                                url, exc, attempt + 1, attempts - 1, delay)
                    time.sleep(delay)
            except EndpointError as exc:
                raise EndpointError(str(exc), calls) from exc
            finally:
                self._release(url)
        out_of_time = hung or clock.left() <= 0
        if out_of_time and timed_out:
            self._declare_frozen(tried[-1])  # the request gave up on a server that did not answer
        frozen = self.frozen()
        gave_up = f" (give-up time {self.give_up_s:.0f}s reached)" if out_of_time and made < attempts else ""
        where = f" at {', '.join(sorted(set(tried)))}" if tried else ""
        if not made and not last_error:
            last_error = ("no concurrency slot came free in time" if out_of_time
                          else "every replica is declared frozen")
        detail = "; ".join([last_error] + [frozen[u] for u in sorted(frozen)])
        raise EndpointError(
            f"model {self.endpoint.model!r} unreachable after {made} attempt(s){gave_up}{where}: {detail}", calls)

    def _call_once(
        self, url: str, request: Request, attempt: int, calls: list[CallRow] | None = None,
        timeout_s: float | None = None,
    ) -> Response:
        call_id = "c_" + uuid.uuid4().hex[:20]
        client = self._clients[url]
        params = self.sampling_params()
        if request.max_tokens is not None:
            params["max_tokens"] = request.max_tokens
        started = time.perf_counter()

        calls = calls if calls is not None else []
        timeout = timeout_s if timeout_s is not None else self.request_timeout_s

        def record(status: str, error: str | None, prompt_tokens: int | None = None,
                   completion_tokens: int | None = None, cost: float | None = None) -> None:
            self._late_count.settle(call_id)  # no pre-send row after the final one
            row = CallRow(
                call_id=call_id, run_id=request.context.get("run_id"),
                problem_id=request.context.get("problem_id"), stage=request.context.get("stage"),
                endpoint=url, model=self.endpoint.model, n=request.n, seed=request.seed,
                attempt=attempt, status=status, error=error, prompt_tokens=prompt_tokens,
                completion_tokens=completion_tokens, latency_s=time.perf_counter() - started, cost=cost,
            )
            calls.append(row)
            self.on_call(row)

        # Recorded before it is sent (a SIGKILL from here on still leaves its row); a token
        # count asked of the server before sending comes out of this attempt's time.
        attempt_ends = time.monotonic() + timeout
        self._announce(url, request, call_id, attempt, timeout)
        timeout = max(0.05, attempt_ends - time.monotonic())
        waiting = self._start_waiting(url)
        try:
            if self.endpoint.api == "chat":
                messages: list[Any]
                if request.messages is not None:
                    messages = list(request.messages)
                else:
                    messages = [{"role": "system", "content": request.system}] if request.system else []
                    messages.append({"role": "user", "content": request.prompt})
                extra: dict[str, Any] = {"return_token_ids": True}
                if self.reasoning.chat_template_kwargs:
                    extra["chat_template_kwargs"] = self.reasoning.chat_template_kwargs
                if request.tools:
                    params["tools"] = request.tools
                if request.logprobs:
                    params["logprobs"] = True
                raw = client.chat.completions.create(
                    model=self.endpoint.model, messages=messages, n=request.n, seed=request.seed,
                    extra_body=extra, timeout=timeout, **params,
                )
                texts = [(c.message.content or "", c.finish_reason, _token_count(c)) for c in raw.choices]
                server_thinking = [thinking.message_reasoning(c.message) for c in raw.choices]
                asked_tools = [_tool_calls(c.message) for c in raw.choices]
            else:
                prompt = f"{request.system}\n\n{request.prompt}" if request.system else request.prompt
                if request.logprobs:
                    params["logprobs"] = 0
                raw = client.completions.create(
                    model=self.endpoint.model, prompt=prompt, n=request.n, seed=request.seed,
                    extra_body={"return_token_ids": True}, timeout=timeout, **params,
                )
                texts = [(c.text or "", c.finish_reason, _token_count(c)) for c in raw.choices]
                server_thinking = [None] * len(texts)
                asked_tools = [None] * len(texts)
            self._answered[url] = time.monotonic()
        except (openai.APIConnectionError, openai.APITimeoutError) as exc:
            record("error", f"{type(exc).__name__}: {exc}")
            raise _Retryable(f"{type(exc).__name__}: {exc}",
                             timed_out=isinstance(exc, openai.APITimeoutError)) from exc
        except openai.APIStatusError as exc:
            self._answered[url] = time.monotonic()  # busy or refusing, but answering
            record("error", f"HTTP {exc.status_code}: {_short(exc)}")
            if exc.status_code in RETRYABLE_STATUS:
                raise _Retryable(f"HTTP {exc.status_code}") from exc
            raise EndpointError(
                f"{url} rejected the request for model {self.endpoint.model!r}: "
                f"HTTP {exc.status_code}: {_short(exc)}", calls,
            ) from exc
        finally:
            self._late_count.settle(call_id)
            self._stop_waiting(url, waiting)

        latency = time.perf_counter() - started
        usage = raw.usage
        prompt_tokens = usage.prompt_tokens if usage else 0
        completion_tokens = usage.completion_tokens if usage else 0
        choices = self._with_reasoning(url, _apportion(texts, completion_tokens), server_thinking, usage)
        choices = [dataclasses.replace(c, tool_calls=t) if t else c for c, t in zip(choices, asked_tools)]
        if request.logprobs:
            choices = [dataclasses.replace(c, logprob=_choice_logprob(r)) for c, r in zip(choices, raw.choices)]
        cost = self._cost(prompt_tokens, completion_tokens, latency)
        record("ok", None, prompt_tokens, completion_tokens, cost)
        return Response(call_id, url, self.endpoint.model, request.seed, choices,
                        prompt_tokens, completion_tokens, latency, cost, list(calls))

    def _with_reasoning(self, url: str, choices: list[Choice], server_thinking: Sequence[str | None],
                        usage: Any) -> list[Choice]:
        """Each choice's thinking split from its answer and counted (llm/reasoning.py)."""
        cfg = self.reasoning
        splits = [thinking.split_reasoning(c.text, r, cfg.think_tags, cfg.prompt_opens_thinking)
                  for c, r in zip(choices, server_thinking)]
        if all(s.reasoning is None for s in splits):
            return choices
        tokenize = None
        if cfg.count_with_tokenizer:
            tokenize = self._tokenizers.setdefault(url, thinking.ServerTokenizer(url, self.endpoint.model))
        counts = thinking.count_reasoning(splits, [c.completion_tokens for c in choices],
                                          thinking.usage_reasoning_tokens(usage), tokenize)
        return [dataclasses.replace(c, text=s.answer, reasoning=s.reasoning, reasoning_tokens=n.tokens,
                                    reasoning_tokens_source=n.source,
                                    budget_exhausted=thinking.budget_exhausted(s, c.finish_reason))
                for c, s, n in zip(choices, splits, counts)]

    # -- the row of an attempt in flight (storage/in_flight.py) ----------------------

    def _announce(self, url: str, request: Request, call_id: str, attempt: int, timeout_s: float) -> None:
        send = self._on_send or (in_flight.announce if in_flight.listening() else None)
        if send is None:
            return
        count_timeout = min(2.0, timeout_s / 4)

        def row(tokens: int, counted: bool) -> CallRow:
            how = "counted by the server's /tokenize" if counted else "estimated (4 characters a token)"
            return CallRow(
                call_id=call_id, run_id=request.context.get("run_id"),
                problem_id=request.context.get("problem_id"), stage=request.context.get("stage"),
                endpoint=url, model=self.endpoint.model, n=request.n, seed=request.seed,
                attempt=attempt, status=in_flight.INTERRUPTED,
                error=(f"sent, no answer recorded (the process stopped first): prompt tokens {how}; "
                       "completion tokens, latency and cost unknown"),
                prompt_tokens=tokens, completion_tokens=None, latency_s=0.0, cost=None,
            )

        if self._late_count.after_s <= 0:
            send(row(*self._prompt_tokens(url, request, timeout_s=count_timeout)))
            return
        send(row(_estimate(_tokenize_body(request, "", self.endpoint.api)[1]), False))
        if url not in self._no_tokenize:
            self._late_count.schedule(
                call_id, lambda: row(*self._prompt_tokens(url, request, timeout_s=count_timeout)), send)

    def _prompt_tokens(self, url: str, request: Request, timeout_s: float) -> tuple[int, bool]:
        """The request's prompt tokens from vLLM's /tokenize (chat template applied), or an
        estimate from its length; True when counted. Measured on the local CPU vLLM:
        docs/sql.md."""
        if url.endswith("/v1"):
            tokenize_url = url[:-3] + "/tokenize"
        else:
            tokenize_url = url + "/tokenize"
        body, text = _tokenize_body(request, self.endpoint.model, self.endpoint.api)
        if url not in self._no_tokenize:
            try:
                resp = self._tokenize_http.post(tokenize_url, json=body, timeout=timeout_s,
                                  headers={"Authorization": f"Bearer {self.endpoint.api_key}"})
                if resp.status_code in (404, 405, 501):
                    self._no_tokenize.add(url)  # not vLLM: do not ask again
                elif resp.status_code == 200:
                    return int(resp.json()["count"]), True
            except (httpx.HTTPError, ValueError, KeyError, TypeError):
                pass
        return _estimate(text), False

    # -- waiting requests (a frozen server must not be silent) ----------------------

    def _start_waiting(self, url: str) -> int:
        token = next(self._waiting_ids)
        with self._pick_lock:
            self._waiting[url][token] = time.monotonic()
            if self._watcher is None:
                self._watcher = StallWatcher(self.endpoint, self.waiting, self._on_stall_event)
        return token

    def _stop_waiting(self, url: str, token: int) -> None:
        with self._pick_lock:
            self._waiting[url].pop(token, None)

    def waiting(self) -> dict[str, tuple[int, float]]:
        """url -> (requests in flight, age in seconds of the oldest)."""
        now = time.monotonic()
        with self._pick_lock:
            return {url: (len(w), now - min(w.values())) for url, w in self._waiting.items() if w}

    def _cost(self, prompt_tokens: int, completion_tokens: int, latency_s: float) -> float | None:
        price = self.endpoint.price
        if price.input_per_mtok is not None and price.output_per_mtok is not None:
            return (prompt_tokens * price.input_per_mtok + completion_tokens * price.output_per_mtok) / 1e6
        if price.gpu_hour is not None:
            # A saturated server shares the GPU among max_concurrency requests.
            return price.gpu_hour * latency_s / 3600.0 / self.endpoint.max_concurrency
        return None  # never guessed


class _Clock:
    """A request's give-up time, moved on by the time it queued for a slot."""

    def __init__(self, at: float) -> None:
        self.at = at

    def left(self) -> float:
        return self.at - time.monotonic()

    def extend(self, seconds: float) -> None:
        self.at += seconds


class _Retryable(Exception):
    def __init__(self, message: str, timed_out: bool = False):
        super().__init__(message)
        self.timed_out = timed_out  # no answer in time (not a refused connection or a 5xx)


def _short(exc: openai.APIStatusError) -> str:
    body = exc.body if isinstance(exc.body, dict) else None
    message = (body or {}).get("message") if body else None
    return str(message or exc.message)[:300]


def _tool_calls(message: Any) -> list[dict[str, Any]] | None:
    """The answer's OpenAI tool calls as plain dicts (stored as sent back), or None."""
    calls = getattr(message, "tool_calls", None)
    if not calls:
        return None
    return [c.model_dump(exclude_none=True) if hasattr(c, "model_dump") else dict(c) for c in calls]


def _token_count(choice: Any) -> int | None:
    """vLLM returns the choice's token ids when asked (return_token_ids)."""
    extra = getattr(choice, "model_extra", None) or {}
    ids = extra.get("token_ids")
    return len(ids) if isinstance(ids, list) else None


def _apportion(texts: Sequence[tuple[str, str | None, int | None]], total: int) -> list[Choice]:
    """Per-choice completion tokens: exact when the server said, else split by length."""
    if all(count is not None for _, _, count in texts):
        return [Choice(t, f, int(c), True) for t, f, c in texts]  # type: ignore[arg-type]
    if len(texts) == 1:
        return [Choice(texts[0][0], texts[0][1], total, True)]
    lengths = [max(len(t), 1) for t, _, _ in texts]
    whole = sum(lengths)
    shares = [total * n // whole for n in lengths]
    shares[0] += total - sum(shares)
    return [Choice(t, f, s, False) for (t, f, _), s in zip(texts, shares)]


def _choice_logprob(choice: Any) -> float | None:
    """Sum of a returned choice's token log-probabilities: chat (`logprobs.content[i].logprob`)
    or completions (`logprobs.token_logprobs`); None when the server sent none."""
    lp = getattr(choice, "logprobs", None)
    if lp is None:
        return None
    content = getattr(lp, "content", None)
    values = [t.logprob for t in content] if content is not None else list(getattr(lp, "token_logprobs", None) or [])
    return float(sum(v for v in values if v is not None))


def _estimate(text: str) -> int:
    """A prompt's tokens without the server: 4 characters a token."""
    return max(1, len(text) // 4)


def _tokenize_body(request: Request, model: str, api: str) -> tuple[dict[str, Any], str]:
    """What /tokenize is asked for the request's prompt (chat template applied for the
    chat API), and the prompt's text (what an estimate counts)."""
    body: dict[str, Any] = {"model": model}
    if api == "chat":
        messages = request.messages
        if messages is None:
            messages = [{"role": "system", "content": request.system}] if request.system else []
            messages.append({"role": "user", "content": request.prompt})
        body.update(messages=messages, add_generation_prompt=True)
        return body, "".join(str(m.get("content") or "") for m in messages)
    text = f"{request.system}\n\n{request.prompt}" if request.system else request.prompt
    body["prompt"] = text
    return body, text
