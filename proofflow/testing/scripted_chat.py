"""STAND-IN chat server with RECORDED COMPLETIONS for conversations: an OpenAI-compatible
HTTP server that answers each chat request from a table written in the test. It is not a
model.

Why it exists: the agent and reasoning tests need one specific assistant message (a tool
call, a proof that fails then one that is fixed from the checker's message, a thinking
block cut by `length`, a server-split `reasoning` field) that the real 135M model would only
produce by luck. The conversation loop, the tools (the real sandbox, the real Lean and
Coq), the storage and the rebuilding of the conversation are all real. What the real model
does with the same loop is tested against the vLLM server (tests/agents/test_agents_vllm.py).

Matching: the first `Reply` whose `when` occurs in the LAST message of the request (or
whose `turn` equals the number of assistant messages already in the request, or that has
neither) answers; otherwise `default`. Every request body is kept in `received` (the conversation exactly as
sent). `/tokenize` counts whitespace-separated words when `tokenize` is on (404 otherwise),
so a test can tell the tokenizer fallback from the apportioned one.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Reply:
    content: str | None = None
    reasoning: str | None = None  # returned in the message's `reasoning` field (a server-side parser)
    tool_calls: list[dict[str, Any]] | None = None  # OpenAI shape: {"id", "type", "function": {...}}
    finish_reason: str = "stop"
    when: str | None = None  # matches a substring of the request's last message
    turn: int | None = None  # or: matches the number of assistant messages already sent
    reasoning_tokens: int | None = None  # reported in usage.completion_tokens_details
    delay_s: float = 0.0  # answer this late (a test kills the client meanwhile)


@dataclass
class Script:
    replies: list[Reply] = field(default_factory=list)
    default: Reply = field(default_factory=lambda: Reply(content="I do not know."))
    model: str = "scripted"
    tokenize: bool = True
    received: list[dict[str, Any]] = field(default_factory=list)  # every chat request body, in order
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self, body: dict[str, Any]) -> Reply:
        messages = body.get("messages") or []
        last = str(messages[-1].get("content") or "") if messages else ""
        turn = sum(1 for m in messages if m.get("role") == "assistant")
        for reply in self.replies:
            if reply.turn is None and reply.when is None:
                return reply  # matches every request
            if reply.turn is not None and reply.turn == turn:
                return reply
            if reply.when is not None and reply.when in last:
                return reply
        return self.default


def _words(text: str | None) -> int:
    return len((text or "").split())


class _Handler(BaseHTTPRequestHandler):
    script: Script
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: Any) -> None:
        pass

    def _send(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        if self.path.rstrip("/") == "/v1/models":
            self._send(200, {"object": "list", "data": [{"id": self.script.model, "object": "model"}]})
        else:
            self._send(404, {"error": {"message": "not found"}})

    def do_POST(self) -> None:
        s = self.script
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
        path = self.path.rstrip("/")
        if path == "/tokenize":
            if not s.tokenize:
                return self._send(404, {"detail": "Not Found"})
            n = _words(str(body.get("prompt", "")))
            return self._send(200, {"count": n, "tokens": list(range(n)), "max_model_len": 2048})
        if path != "/v1/chat/completions":
            return self._send(404, {"error": {"message": "not found"}})
        if body.get("model") != s.model:
            return self._send(404, {"error": {"message": f"The model `{body.get('model')}` does not exist."}})
        with s.lock:
            s.received.append(body)
        n = int(body.get("n") or 1)
        reply = s.answer(body)
        if reply.delay_s:
            time.sleep(reply.delay_s)
        message: dict[str, Any] = {"role": "assistant", "content": reply.content}
        if reply.reasoning is not None:
            message["reasoning"] = reply.reasoning
        if reply.tool_calls:
            message["tool_calls"] = reply.tool_calls
        count = max(1, _words(reply.content) + _words(reply.reasoning)
                    + sum(_words(json.dumps(c)) for c in reply.tool_calls or []))
        choices = [{"index": i, "message": message, "finish_reason": reply.finish_reason,
                    "token_ids": list(range(count))} for i in range(n)]
        prompt_tokens = sum(_words(str(m.get("content") or "")) for m in body.get("messages") or [])
        usage: dict[str, Any] = {"prompt_tokens": prompt_tokens, "completion_tokens": count * n,
                                 "total_tokens": prompt_tokens + count * n}
        if reply.reasoning_tokens is not None:
            usage["completion_tokens_details"] = {"reasoning_tokens": reply.reasoning_tokens * n}
        self._send(200, {"id": f"chat-{len(s.received)}", "object": "chat.completion", "created": int(time.time()),
                         "model": s.model, "choices": choices, "usage": usage})


class ScriptedChatServer:
    """`with ScriptedChatServer(Script(replies=[...])) as s: s.base_url`."""

    def __init__(self, script: Script | None = None, port: int = 0):
        self.script = script or Script()
        handler = type("Handler", (_Handler,), {"script": self.script})
        self._httpd = ThreadingHTTPServer(("127.0.0.1", port), handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    def __enter__(self) -> ScriptedChatServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


def tir_script(tool_turns: int, model: str = "scripted") -> Script:
    """A TIR conversation: turns 0..tool_turns-1 write a ```python block, the next answers
    (bench/bench_agent.py, the agent flow tests)."""
    replies = [Reply(turn=t, content=f"Let me compute step {t}.\n```python\nprint({t} * 7)\n```")
               for t in range(tool_turns)]
    replies.append(Reply(turn=tool_turns, content="So the answer is \\boxed{42}."))
    return Script(replies=replies, model=model)


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description="STAND-IN scripted chat server (TIR script)")
    parser.add_argument("--port", type=int, default=8012)
    parser.add_argument("--model", default="scripted")
    parser.add_argument("--tool-turns", type=int, default=3)
    parser.add_argument("--slow-turn", type=int, default=None, help="answer this turn only after --delay-s")
    parser.add_argument("--delay-s", type=float, default=0.0)
    args = parser.parse_args()
    script = tir_script(args.tool_turns, args.model)
    for reply in script.replies:
        if reply.turn == args.slow_turn:
            reply.delay_s = args.delay_s
    server = ScriptedChatServer(script, args.port)
    print(f"stand-in scripted chat server on {server.base_url}", flush=True)
    with server:
        server._thread.join()


if __name__ == "__main__":
    main()
