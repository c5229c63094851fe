"""A stored conversation, rebuilt and printed: what `proofflow show RUN --problem ID
--conversation` and the run report show. The messages are rebuilt from the rows
(agents/episode.conversation: exactly what the model was sent, turn by turn); the thinking
of each turn, its tokens and each tool run's outcome and time are shown beside them."""

from __future__ import annotations

import json
from typing import Any

from proofflow.agents.episode import Episode, conversation, load_episode, turn_runs
from proofflow.storage.conversations import ProblemConversations


def protocol_of(data: ProblemConversations) -> str:
    """The tool protocol a run used, from what it stored (tool calls from the server, or
    the text protocol's `text-N` ids)."""
    if any(s.tool_calls for s in data.samples.values()):
        return "openai"
    if any(not (r.tool_call_id or "").startswith("text-") for r in data.tool_runs.values()):
        return "openai"
    return "text"


def episodes(data: ProblemConversations, run_id: str) -> list[Episode]:
    return [load_episode(run_id, data.problem_id, n, data.samples, data.tool_runs, data.episodes.get(n))
            for n in data.episode_numbers]


def messages(data: ProblemConversations, run_id: str) -> dict[int, list[dict[str, Any]]]:
    """Episode number -> its conversation as sent to the model."""
    protocol = protocol_of(data)
    return {ep.number: conversation(ep, protocol) for ep in episodes(data, run_id)}


def render(data: ProblemConversations, run_id: str, max_chars: int = 4000) -> str:
    """The conversations as plain text (Markdown-friendly)."""
    protocol = protocol_of(data)
    out: list[str] = []
    for ep in episodes(data, run_id):
        ended = ep.ended.ended if ep.ended else "not ended yet"
        out.append(f"## episode {ep.number}: {len(ep.turns)} turns, {len(ep.runs)} tool calls, {ended}")
        seen = 0
        for turn in ep.turns:
            sent = json.loads(turn.prompt or "[]")
            for m in sent:
                out.append(_message(m, max_chars))
            seen += len(sent)
            tokens = f"prompt {turn.prompt_tokens} · completion {turn.completion_tokens}"
            if turn.reasoning_tokens is not None:
                tokens += f" · thinking {turn.reasoning_tokens} ({turn.reasoning_tokens_source})"
            out.append(f"[assistant · turn {turn.round} · {tokens} · {turn.finish_reason}]")
            if turn.reasoning:
                out.append(_indent("(thinking, not sent back) " + _cut(turn.reasoning, max_chars)))
            out.append(_indent(_cut(turn.completion or "", max_chars)))
            if turn.tool_calls:
                out.append(_indent("tool calls: " + _cut(turn.tool_calls, max_chars)))
            for run in turn_runs(ep, turn):
                what = f"{run.outcome}" + (f": {run.error}" if run.error else "")
                out.append(f"[tool {run.tool} #{run.call_index} · {what} · {run.duration_s:.2f}s]")
        if ep.turns:
            # The results of the last turn's calls (sent to no one if the episode ended).
            last = conversation(ep, protocol)[seen + len(ep.turns):]
            for m in last:
                out.append(_message(m, max_chars))
        out.append("")
    return "\n".join(out)


def _message(m: dict[str, Any], max_chars: int) -> str:
    role = m.get("role", "?")
    extra = f" · {m['tool_call_id']}" if m.get("tool_call_id") else ""
    return f"[{role}{extra}]\n" + _indent(_cut(str(m.get("content") or ""), max_chars))


def _cut(text: str, n: int) -> str:
    return text if len(text) <= n else text[:n] + f"… ({len(text) - n:,} more characters)"


def _indent(text: str) -> str:
    return "\n".join("    " + line for line in text.splitlines()) or "    "
