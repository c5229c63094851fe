"""Lean behind a Kimina Lean Server (one HTTP request per check)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from proofflow.verifiers.formal import CheckResult, FormalProblem, Status
from proofflow.verifiers.lean.repl import classify, parse_axioms, to_holes, to_messages


@dataclass(frozen=True)
class KiminaConfig:
    url: str = "http://localhost:8000"
    api_key: str | None = None
    timeout_s: float = 60.0
    version: str = "kimina"    # the server's Lean version, for the cache key
    reuse: bool = True         # let the server reuse a REPL with the same header


class KiminaUnavailable(RuntimeError):
    """The Kimina server could not be asked at all (not a verdict on anything)."""

    resumable = False  # raised before any sample: nothing stored, no resume line


class KiminaChecker:
    """FormalChecker over a Kimina Lean Server: POST /check {"snippet": {"id", "code"},
    "timeout", "reuse"} → {"id", "time", "error", "response": {"env", "messages",
    "sorries"}}. The server splits the header off the code itself; `#print axioms` is
    appended to the snippet so the audit gets the axioms in the same request."""

    name = "lean"

    def __init__(self, config: KiminaConfig, transport: Any = None):
        import httpx  # only needed for this backend

        self.config = config
        self.version = config.version
        headers = {"Authorization": f"Bearer {config.api_key}"} if config.api_key else {}
        # `transport`: an httpx transport (tests answer with a recorded server reply).
        self._client = httpx.Client(base_url=config.url, headers=headers, timeout=config.timeout_s + 30,
                                    transport=transport)

    def check_header(self, header: str) -> list[str]:
        """The header alone through the server, before a run pays for any sample: its
        errors' text (none: the server's Lean project has what it imports). A server that
        cannot be asked is not a header error: KiminaUnavailable, one line with the URL."""
        import httpx

        code = header.rstrip("\n") + "\n"
        payload = {"snippet": {"id": "header", "code": code}, "timeout": int(self.config.timeout_s),
                   "reuse": self.config.reuse}
        try:
            body = self._post(payload)
        except (httpx.HTTPError, ValueError) as exc:
            raise KiminaUnavailable(
                f"the Kimina Lean Server at {self.config.url} could not check the problems' header "
                f"({type(exc).__name__}: {exc}); start it or set prove.kimina_url") from None
        if body.get("error"):
            raise KiminaUnavailable(f"the Kimina Lean Server at {self.config.url} failed on the header: "
                                    f"{' '.join(str(body['error']).split())[:300]}")
        messages = (body.get("response") or {}).get("messages", [])
        return [str(m.get("data", "")) for m in messages if m.get("severity") == "error"]

    def request_body(self, problem: FormalProblem, proof_source: str, snippet_id: str) -> tuple[dict[str, Any], int]:
        header = problem.header.rstrip("\n") + "\n"
        code = header + proof_source.rstrip("\n") + f"\n\n#print axioms {problem.name}\n"
        return ({"snippet": {"id": snippet_id, "code": code}, "timeout": int(self.config.timeout_s),
                 "reuse": self.config.reuse}, header.count("\n"))

    def parse(self, problem: FormalProblem, proof_source: str, body: dict[str, Any], offset: int,
              elapsed: float) -> CheckResult:
        def result(status: Status, **kw: Any) -> CheckResult:
            return CheckResult(status=status, backend="lean", version=self.version, duration_s=elapsed, **kw)
        if body.get("error"):
            err = str(body["error"])
            return result("timeout" if "timed out" in err else "crash", detail=err)
        response = body.get("response") or {}
        raw = response.get("messages", [])
        last_source_line = proof_source.rstrip("\n").count("\n") + 1
        axiom_msgs = [m for m in raw if (m.get("pos") or {}).get("line", 0) - offset > last_source_line]
        messages = to_messages([m for m in raw if m not in axiom_msgs], offset)
        holes = to_holes(response.get("sorries", []), offset)
        status = classify(problem, messages, holes)
        axioms = parse_axioms(axiom_msgs) if status == "complete" else None
        return result(status, messages=messages, holes=holes, axioms=axioms)

    def close(self) -> None:
        self._client.close()

    def _post(self, payload: dict[str, Any]) -> dict[str, Any]:
        """POST /check; the server's JSON answer (httpx errors and bad JSON propagate)."""
        resp = self._client.post("/check", json=payload)
        resp.raise_for_status()
        body: dict[str, Any] = resp.json()
        return body

    def check(self, problem: FormalProblem, proof_source: str) -> CheckResult:
        import httpx

        from proofflow.verifiers.formal import source_hash

        t0 = time.monotonic()
        payload, offset = self.request_body(problem, proof_source, source_hash(proof_source)[:16])
        try:
            body = self._post(payload)
        except httpx.TimeoutException:
            return CheckResult("timeout", "lean", self.version, duration_s=time.monotonic() - t0,
                               detail="Kimina server did not answer in time")
        except (httpx.HTTPError, ValueError) as exc:
            return CheckResult("crash", "lean", self.version, duration_s=time.monotonic() - t0, detail=str(exc))
        return self.parse(problem, proof_source, body, offset, time.monotonic() - t0)
