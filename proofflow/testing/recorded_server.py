"""STAND-IN model server with RECORDED COMPLETIONS: an OpenAI-compatible HTTP server that
answers from a fixed table {prompt substring → completion}. It is not a model.

Why it exists: some tests need one specific model output (a good Coq sketch, a proof with
a hole, a proof that changes the statement) to drive the proving flows down a path the
real local model would only take by luck. The table is written in the test, in plain
sight; the flows, the checker and the storage under test are all real. Tests that must
show the pipeline works with a real model use the vLLM server instead
(tests/flows/test_prove_vllm.py).

Matching: the first key (in insertion order) that occurs in the request's prompt (the
user message, or the completions prompt) wins; no match → `default`. Every choice of a
request with n > 1 gets the same text. The HTTP side is the instant stand-in's
(testing/instant_server.py), which also counts requests and keeps the prompts.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from proofflow.testing.instant_server import Behaviour, InstantServer


@dataclass
class Recording(Behaviour):
    answers: dict[str, str] = field(default_factory=dict)  # type: ignore[assignment]
    default: str = "I cannot prove this."
    model: str = "recorded"

    def completion(self, prompt: str, seed: int, index: int) -> str:
        for key, text in self.answers.items():
            if key in prompt:
                return text
        return self.default


class RecordedServer(InstantServer):
    """`with RecordedServer(Recording(answers={...})) as s: s.base_url`."""

    def __init__(self, recording: Recording | None = None, port: int = 0):
        super().__init__(port, recording or Recording())

    @property
    def recording(self) -> Recording:
        return self.behaviour  # type: ignore[return-value]
