"""TEST DOUBLE: a recording HTTP proxy in front of a real model server. It forwards every
request unchanged to the upstream server (the real vLLM) and keeps each chat request's
JSON body, so a test can compare what the server actually received with the conversation
proofflow rebuilds from its database. It changes nothing and answers nothing itself.

    with RecordingProxy("http://127.0.0.1:8011") as proxy:
        ...  # point the endpoint at proxy.base_url
        proxy.chat_requests  # the bodies, in order
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx


class _Handler(BaseHTTPRequestHandler):
    proxy: RecordingProxy
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: Any) -> None:
        pass

    def _forward(self, method: str) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0))) if method == "POST" else b""
        if method == "POST" and self.path.rstrip("/").endswith("/chat/completions"):
            with self.proxy.lock:
                self.proxy.chat_requests.append(json.loads(body or b"{}"))
        headers = {k: v for k, v in self.headers.items() if k.lower() in ("content-type", "authorization")}
        try:
            resp = httpx.request(method, self.proxy.upstream + self.path, content=body, headers=headers,
                                 timeout=self.proxy.timeout_s)
        except httpx.HTTPError as exc:
            data = json.dumps({"error": {"message": f"proxy: upstream failed: {exc}"}}).encode()
            self.send_response(502)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        self.send_response(resp.status_code)
        self.send_header("Content-Type", resp.headers.get("content-type", "application/json"))
        self.send_header("Content-Length", str(len(resp.content)))
        self.end_headers()
        self.wfile.write(resp.content)

    def do_GET(self) -> None:
        self._forward("GET")

    def do_POST(self) -> None:
        self._forward("POST")


class RecordingProxy:
    def __init__(self, upstream: str, port: int = 0, timeout_s: float = 600.0):
        # upstream: the server root (http://host:port), without /v1
        self.upstream = upstream.rstrip("/").removesuffix("/v1")
        self.timeout_s = timeout_s
        self.chat_requests: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        handler = type("Handler", (_Handler,), {"proxy": self})
        self._httpd = ThreadingHTTPServer(("127.0.0.1", port), handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    def __enter__(self) -> RecordingProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
