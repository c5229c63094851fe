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


class KiminaChecker:
    """FormalChecker over a Kimina Lean Server: POST /check {"snippet": {"id", "code"},
    "timeout", "reuse"} → {"id", "time", "error", "response": {"env", "messages",
    "sorries"}}. The server splits the header off the code itself; `#print axioms` is
    appended to the snippet so the audit gets the axioms in the same request."""

    name = "lean"

    def __init__(self, config: KiminaConfig):
        import httpx  # only needed for this backend

        self.config = config
        self.version = config.version
        headers = {"Authorization": f"Bearer {config.api_key}"} if config.api_key else {}
        self._client = httpx.Client(base_url=config.url, headers=headers, timeout=config.timeout_s + 30)

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

    def check(self, problem: FormalProblem, proof_source: str) -> CheckResult:
        import httpx

        from proofflow.verifiers.formal import source_hash

        t0 = time.monotonic()
        payload, offset = self.request_body(problem, proof_source, source_hash(proof_source)[:16])
        try:
            resp = self._client.post("/check", json=payload)
            resp.raise_for_status()
            body = resp.json()
        except httpx.TimeoutException:
            return CheckResult("timeout", "lean", self.version, duration_s=time.monotonic() - t0,
                               detail="Kimina server did not answer in time")
        except (httpx.HTTPError, ValueError) as exc:
            return CheckResult("crash", "lean", self.version, duration_s=time.monotonic() - t0, detail=str(exc))
        return self.parse(problem, proof_source, body, offset, time.monotonic() - t0)
