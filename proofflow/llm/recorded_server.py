"""STAND-IN model server with RECORDED COMPLETIONS: an OpenAI-compatible HTTP server that
answers from a fixed table {prompt substring → completion}. It is not a model.

Why it exists: some tests need one specific model output (a good Coq sketch, a proof with
a hole, a proof that changes the statement) to drive the proving flows down a path the
real local model would only take by luck. The table is written in the test, in plain
sight; the flows, the checker and the storage under test are all real. Tests that must
show the pipeline works with a real model use the vLLM server instead
(tests/test_prove_vllm.py).

Matching: the first key (in insertion order) that occurs in the request's prompt (the
user message, or the completions prompt) wins; no match → `default`. Every choice of a
request with n > 1 gets the same text. Token counts are whitespace words (stand-in).
Like the instant server (llm/instant_server.py), it counts requests for the tests.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self


@dataclass
class Recording:
    answers: dict[str, str] = field(default_factory=dict)
    default: str = "I cannot prove this."
    model: str = "recorded"
    requests: int = 0
    prompts: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self, prompt: str) -> str:
        for key, text in self.answers.items():
            if key in prompt:
                return text
        return self.default


class _Handler(BaseHTTPRequestHandler):
    recording: Recording
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: Any) -> None:
        pass

    def _send(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        if self.path.rstrip("/") == "/v1/models":
            self._send(200, {"object": "list", "data": [{"id": self.recording.model, "object": "model"}]})
        else:
            self._send(404, {"error": {"message": "not found"}})

    def do_POST(self) -> None:
        rec = self.recording
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
        chat = self.path.rstrip("/") == "/v1/chat/completions"
        if not chat and self.path.rstrip("/") != "/v1/completions":
            return self._send(404, {"error": {"message": "not found"}})
        if body.get("model") != rec.model:
            return self._send(404, {"error": {"message": f"The model `{body.get('model')}` does not exist."}})
        if chat:
            prompt = "\n".join(str(m.get("content", "")) for m in body.get("messages", []))
        else:
            prompt = str(body.get("prompt", ""))
        n = int(body.get("n") or 1)
        text = rec.answer(prompt)
        count = max(1, len(text.split()))
        choices = []
        for i in range(n):
            choice: dict[str, Any] = {"index": i, "finish_reason": "stop", "token_ids": list(range(count))}
            choice.update({"message": {"role": "assistant", "content": text}} if chat else {"text": text})
            choices.append(choice)
        with rec.lock:
            rec.requests += 1
            rec.prompts.append(prompt)
        p_tokens = len(prompt.split())
        self._send(200, {
            "id": f"rec-{rec.requests}", "object": "chat.completion" if chat else "text_completion",
            "created": int(time.time()), "model": rec.model, "choices": choices,
            "usage": {"prompt_tokens": p_tokens, "completion_tokens": count * n, "total_tokens": p_tokens + count * n},
        })


class RecordedServer:
    """`with RecordedServer(Recording(answers={...})) as s: s.base_url`."""

    def __init__(self, recording: Recording | None = None, port: int = 0):
        self.recording = recording or Recording()
        handler = type("Handler", (_Handler,), {"recording": self.recording})
        self._httpd = ThreadingHTTPServer(("127.0.0.1", port), handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
