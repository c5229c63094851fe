"""A reasoning model's thinking, kept apart from its answer and counted.

Why apart: the answer extractor, the proof extractor and the vote read a sample's
`completion`; a number or a half proof inside the thinking must never be read as the
answer. So every choice is split here, once, and the sample stores the answer in
`completion` and the thinking in `reasoning` (storage/schema.sql).

Where the split comes from, in order:
- the server (vLLM started with `--reasoning-parser …`) returns the thinking in the
  message's `reasoning` field (`reasoning_content` in older vLLM and other servers);
- otherwise proofflow splits the text on the think tags itself (`<think>…</think>` by
  default; `ReasoningConfig.think_tags`). A text that has the close tag but not the open
  one is a template that opened the thinking in the prompt (DeepSeek-R1, Qwen3-thinking).

Reasoning tokens per choice, in order of trust (`reasoning_tokens_source`):
`usage` (the server's `completion_tokens_details.reasoning_tokens`, one choice),
`tokenize` (the thinking text counted with the server's own `/tokenize`), `apportioned`
(the choice's completion tokens shared by characters: inexact, and marked so).

A choice whose generation stopped on `length` while still thinking has no answer at all:
it is `budget_exhausted`, its own outcome (counted in reports), never a wrong answer.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

DEFAULT_TAGS = ("<think>", "</think>")


@dataclass(frozen=True)
class Split:
    """One choice's text, thinking removed."""

    answer: str
    reasoning: str | None  # None: the choice did not think (or we cannot tell)
    unfinished: bool  # the text ended inside the thinking (no close tag / no content)
    source: str  # server | tags | none


def split_reasoning(content: str | None, server_reasoning: str | None = None,
                    tags: Sequence[str] = DEFAULT_TAGS, prompt_opens_thinking: bool = False) -> Split:
    """Split a choice into (answer, thinking). `server_reasoning` is what the server's
    reasoning parser returned; `prompt_opens_thinking` says the chat template ends the
    prompt inside an open think block, so a text without tags is all thinking."""
    text = content or ""
    if server_reasoning:
        # The server split it; a leftover tag pair in the content is still thinking.
        rest = _split_tags(text, tags, False)
        extra = f"\n{rest.reasoning}" if rest.reasoning else ""
        return Split(rest.answer, server_reasoning + extra, not rest.answer.strip(), "server")
    return _split_tags(text, tags, prompt_opens_thinking)


def _split_tags(text: str, tags: Sequence[str], opened: bool) -> Split:
    open_tag, close_tag = tags[0], tags[1]
    if open_tag not in text and close_tag not in text:
        if opened and text:
            return Split("", text, True, "tags")
        return Split(text, None, False, "none")
    answer: list[str] = []
    thinking: list[str] = []
    rest = text
    inside = opened or (close_tag in text and (open_tag not in text or text.index(close_tag) < text.index(open_tag)))
    while rest:
        if inside:
            end = rest.find(close_tag)
            if end < 0:
                thinking.append(rest)
                return Split("".join(answer).strip(), "\n".join(t.strip() for t in thinking), True, "tags")
            thinking.append(rest[:end])
            rest = rest[end + len(close_tag):]
            inside = False
        else:
            start = rest.find(open_tag)
            if start < 0:
                answer.append(rest)
                break
            answer.append(rest[:start])
            rest = rest[start + len(open_tag):]
            inside = True
    return Split("".join(answer).strip(), "\n".join(t.strip() for t in thinking), False, "tags")


def budget_exhausted(split: Split, finish_reason: str | None) -> bool:
    """The generation hit max_tokens while still thinking: no answer was ever started."""
    return finish_reason == "length" and split.reasoning is not None and split.unfinished


@dataclass(frozen=True)
class ReasoningCount:
    tokens: int | None  # None when the choice has no thinking
    source: str | None  # usage | tokenize | apportioned; None without thinking


Tokenize = Callable[[str], int | None]


def count_reasoning(splits: Sequence[Split], completion_tokens: Sequence[int],
                    usage_reasoning: int | None, tokenize: Tokenize | None) -> list[ReasoningCount]:
    """Reasoning tokens per choice (see the module docstring for the order of trust)."""
    counts: list[ReasoningCount] = []
    single = len(splits) == 1
    for split, total in zip(splits, completion_tokens):
        if not split.reasoning:
            counts.append(ReasoningCount(None, None))
            continue
        # A parser that cannot count reports 0 with thinking present: not a count.
        if single and usage_reasoning:
            counts.append(ReasoningCount(min(usage_reasoning, total) if total else usage_reasoning, "usage"))
            continue
        counted = tokenize(split.reasoning) if tokenize is not None else None
        if counted is not None:
            counts.append(ReasoningCount(min(counted, total) if total else counted, "tokenize"))
            continue
        whole = len(split.reasoning) + len(split.answer)
        counts.append(ReasoningCount(round(total * len(split.reasoning) / whole) if whole else 0, "apportioned"))
    return counts


class ServerTokenizer:
    """Counts tokens with the model server's own tokenizer (vLLM's POST /tokenize, served
    beside /v1). A server without it answers 404 once; after that we stop asking."""

    def __init__(self, base_url: str, model: str, timeout_s: float = 10.0):
        root = base_url.rstrip("/")
        self.url = (root[:-3] if root.endswith("/v1") else root) + "/tokenize"
        self.model = model
        self.timeout_s = timeout_s
        self.available = True
        self._lock = threading.Lock()

    def __call__(self, text: str) -> int | None:
        if not self.available:
            return None
        try:
            resp = httpx.post(self.url, json={"model": self.model, "prompt": text, "add_special_tokens": False},
                              timeout=self.timeout_s)
        except httpx.HTTPError:
            return None  # transient: the next choice may ask again
        if resp.status_code in (404, 405, 501):
            with self._lock:
                self.available = False
            return None
        try:
            body: Any = resp.json()
            return int(body["count"]) if "count" in body else len(body["tokens"])
        except (ValueError, KeyError, TypeError):
            return None


def message_reasoning(message: Any) -> str | None:
    """The thinking a server returned beside the content: vLLM ≥0.10 `reasoning`, older
    vLLM and other servers `reasoning_content` (openai's client keeps unknown fields in
    `model_extra`)."""
    for name in ("reasoning", "reasoning_content"):
        value = getattr(message, name, None)
        if value is None:
            value = (getattr(message, "model_extra", None) or {}).get(name)
        if isinstance(value, str) and value:
            return value
    return None


def usage_reasoning_tokens(usage: Any) -> int | None:
    details = getattr(usage, "completion_tokens_details", None) if usage is not None else None
    value = getattr(details, "reasoning_tokens", None) if details is not None else None
    return int(value) if isinstance(value, int) else None
