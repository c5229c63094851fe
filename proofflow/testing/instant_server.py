"""STAND-IN model server: a minimal OpenAI-compatible HTTP server that answers at once.

It exists for two jobs a real model cannot do: measuring proofflow's own overhead
(bench/bench_pipeline.py: a real model's latency would hide it) and injecting faults
(HTTP 500s, slow answers, a frozen server: `freeze()`) in tests. It is never a substitute for the integration tests
against the real vLLM server. Completions are deterministic in (prompt, seed, index):
"... The answer is \\boxed{K}" with K drawn from the seed, so a verifier has real work.
Run it: python -m proofflow.testing.instant_server --port 8011
"""

from __future__ import annotations

import argparse
import json
import random
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Behaviour:
    model: str = "instant"
    fail_first: int = 0          # answer HTTP 500 to the first k generation requests
    fail_from: int = 0           # answer HTTP 500 to the k-th generation request and all later (0: never)
    delay_s: float = 0.0         # sleep before answering
    # extra sleep for single requests: {k: seconds} delays the k-th generation request
    # received (1-based), e.g. one slow answer among a stage's fast ones (crash tests)
    slow_requests: dict[int, float] = field(default_factory=dict)
    answers: tuple[str, ...] = ("1", "2", "3", "4", "5")
    text: str | None = None      # answer every sample with exactly this text (garbage tests)
    requests: int = 0            # generation requests answered with 200
    received: int = 0            # generation requests received (any status)
    prompts: list[str] = field(default_factory=list)  # every answered prompt, in order
    answered: list[tuple[str, int, int]] = field(default_factory=list)  # (prompt, seed, n) of each
    received_at: list[float] = field(default_factory=list)  # time.monotonic() of each generation request
    lock: threading.Lock = field(default_factory=threading.Lock)
    # Set while the server answers; cleared by freeze(): every request (generation, the
    # /v1/models health probe, /tokenize) then hangs like a SIGSTOPped server's until thaw().
    thawed: threading.Event = field(default_factory=lambda: _set_event())

    def freeze(self) -> None:
        self.thawed.clear()

    def thaw(self) -> None:
        self.thawed.set()

    def completion(self, prompt: str, seed: int, index: int) -> str:
        """The text of choice `index` of a request; subclasses answer differently."""
        if self.text is not None:
            return self.text
        rng = random.Random(f"{seed}:{index}:{len(prompt)}")
        return f"Let me think step by step. The answer is \\boxed{{{rng.choice(self.answers)}}}"


class CountingBehaviour(Behaviour):
    """Answers each choice after `hold_s`, counting the requests being answered at once
    (`peak`): tests of a concurrency bound read it."""

    def __init__(self, hold_s: float) -> None:
        super().__init__(model="instant")
        self.hold_s = hold_s
        self.now = 0
        self.peak = 0
        self.count_lock = threading.Lock()

    def completion(self, prompt: str, seed: int, index: int) -> str:
        with self.count_lock:
            self.now += 1
            self.peak = max(self.peak, self.now)
        time.sleep(self.hold_s)
        with self.count_lock:
            self.now -= 1
        return super().completion(prompt, seed, index)


def _set_event() -> threading.Event:
    event = threading.Event()
    event.set()
    return event


def _prompt_of(body: dict[str, Any]) -> str:
    if "messages" in body:
        return "\n".join(str(m.get("content", "")) for m in body.get("messages") or [])
    return str(body.get("prompt", ""))


class _Handler(BaseHTTPRequestHandler):
    behaviour: Behaviour
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: Any) -> None:  # quiet
        pass

    def _send(self, status: int, body: dict[str, Any] | str, content_type: str = "application/json") -> None:
        data = (json.dumps(body) if isinstance(body, dict) else body).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        b = self.behaviour
        b.thawed.wait()
        if self.path.rstrip("/") == "/v1/models":
            self._send(200, {"object": "list", "data": [{"id": b.model, "object": "model"}]})
        elif self.path == "/metrics":
            self._send(200, f"instant_requests_total {b.requests}\ninstant_received_total {b.received}\n", "text/plain")
        else:
            self._send(404, {"error": {"message": "not found"}})

    def do_POST(self) -> None:
        b = self.behaviour
        length = int(self.headers.get("Content-Length", 0))
        body = json.loads(self.rfile.read(length) or b"{}")
        if self.path.rstrip("/") == "/tokenize":  # vLLM's, counting like `usage` below
            b.thawed.wait()
            count = len(_prompt_of(body).split())
            return self._send(200, {"count": count, "tokens": list(range(count)), "max_model_len": 2048})
        chat = self.path.rstrip("/") == "/v1/chat/completions"
        if not chat and self.path.rstrip("/") != "/v1/completions":
            return self._send(404, {"error": {"message": "not found"}})
        with b.lock:
            b.received += 1
            b.received_at.append(time.monotonic())
            k = b.received
        b.thawed.wait()
        with b.lock:
            failing = k <= b.fail_first or 0 < b.fail_from <= k
            extra_delay = b.slow_requests.get(k, 0.0)
        if failing:
            return self._send(500, {"error": {"message": "injected failure"}})
        if body.get("model") != b.model:
            return self._send(404, {"error": {"message": f"The model `{body.get('model')}` does not exist."}})
        if b.delay_s or extra_delay:
            time.sleep(b.delay_s + extra_delay)
        if chat:
            prompt = "\n".join(str(m.get("content", "")) for m in body.get("messages", []))
        else:
            prompt = str(body.get("prompt", ""))
        n, seed = int(body.get("n") or 1), int(body.get("seed") or 0)
        texts = [b.completion(prompt, seed, i) for i in range(n)]
        token_counts = [max(1, len(t.split())) for t in texts]
        choices = []
        for i, (text, count) in enumerate(zip(texts, token_counts)):
            choice: dict[str, Any] = {"index": i, "finish_reason": "stop", "token_ids": list(range(count))}
            choice.update({"message": {"role": "assistant", "content": text}} if chat else {"text": text})
            choices.append(choice)
        with b.lock:
            b.requests += 1
            b.prompts.append(prompt)
            b.answered.append((prompt, seed, n))
        self._send(200, {
            "id": f"cmpl-{b.requests}", "object": "chat.completion" if chat else "text_completion",
            "created": int(time.time()), "model": b.model, "choices": choices,
            "usage": {"prompt_tokens": len(prompt.split()), "completion_tokens": sum(token_counts),
                      "total_tokens": len(prompt.split()) + sum(token_counts)},
        })


class InstantServer:
    """Runs the stand-in on a background thread: `with InstantServer() as s: s.base_url`."""

    def __init__(self, port: int = 0, behaviour: Behaviour | None = None):
        self.behaviour = behaviour or Behaviour()
        handler = type("Handler", (_Handler,), {"behaviour": self.behaviour})
        self._httpd = ThreadingHTTPServer(("127.0.0.1", port), handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    def __enter__(self) -> InstantServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.behaviour.thaw()  # let hung handlers finish
        self._httpd.shutdown()
        self._httpd.server_close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=8011)
    parser.add_argument("--model", default="instant")
    args = parser.parse_args()
    server = InstantServer(args.port, Behaviour(model=args.model))
    print(f"stand-in OpenAI server on {server.base_url} (model {args.model})", flush=True)
    with server:
        server._thread.join()


if __name__ == "__main__":
    main()
