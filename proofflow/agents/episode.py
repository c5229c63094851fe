"""One agent episode — a conversation of turns and tool runs — as a pure function of what
is stored, so a killed run resumes exactly where it stopped.

Storage (docs/agents.md):
- turn t of episode e is a sample: stage `turn`, idx e, round t, parent = turn t-1,
  id `keys.sample_id(run, problem, "turn", parent, e)`; its `prompt` holds the messages
  added to the conversation just before it was asked (the opening messages for turn 0,
  the tool results for later turns), as JSON; its `completion` the answer (never the
  thinking, which is in `reasoning`), its `tool_calls` the server's tool calls;
- tool call i of a turn is a `tool_runs` row, id `keys.sample_id(run, problem, "tool",
  turn, i)`;
- the end of an episode is an `episodes` row, plus one candidate sample (the graded one).

So the conversation is rebuilt from rows alone (`conversation`), and `next_step` says what
the episode does next: ask the next turn, run the tool calls of the last turn that have no
row yet, or end (and why). Nothing here asks a model or runs a tool.

Prefix stability: a turn's messages are the previous turn's messages plus the new ones,
each built from stored text only, so the conversation sent at turn t is a byte-identical
prefix of the one sent at turn t+1 (vLLM's prefix cache hits; tests assert it).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from proofflow.agents.tools import ToolCall, ToolSpec, openai_calls, render_text_results, text_calls
from proofflow.keys import sample_id
from proofflow.storage.records import EpisodeRow, SampleRow, ToolRunRow

TURN_STAGE = "turn"

# How an episode ended (episodes.ended).
ANSWERED = "answered"  # a turn without tool calls: its text is the final answer
PROVED = "proved"  # a checking tool accepted the proof
MAX_TURNS = "max_turns"
TOKEN_BUDGET = "token_budget"  # the problem's token budget (all turns, all episodes) is spent
WALL_TIME = "wall_time"  # model time + tool time of the episode
BUDGET_EXHAUSTED = "budget_exhausted"  # the last turn stopped on length inside its thinking
CONTEXT_LENGTH = "context_length"  # the next turn would not fit the model's context
MODEL_ERROR = "model_error"  # the server refused the turn for good (HTTP 4xx)


@dataclass(frozen=True)
class Caps:
    """An episode's limits (a strategy's settings)."""

    max_turns: int = 4
    max_calls_per_tool: int = 4
    max_tokens_per_turn: int = 512
    max_tokens_per_problem: int | None = None
    wall_time_s: float | None = None
    max_input_chars: int = 20_000  # a tool call's arguments; longer is refused with a tool error
    max_output_chars: int = 2_000  # a tool's output sent back (the stored output is this too)
    context_tokens: int | None = None  # the model's context; a turn that would not fit ends the episode
    protocol: str = "text"  # text | openai


@dataclass
class Episode:
    """What is stored of one episode."""

    number: int
    turns: list[SampleRow]
    runs: dict[str, ToolRunRow]  # by tool_run_id
    ended: EpisodeRow | None

    @property
    def last(self) -> SampleRow | None:
        return self.turns[-1] if self.turns else None


def turn_id(run_id: str, problem_id: str, parent: str | None, episode: int) -> str:
    return sample_id(run_id, problem_id, TURN_STAGE, parent, episode)


def tool_run_id(run_id: str, problem_id: str, turn_sample_id: str, index: int) -> str:
    return sample_id(run_id, problem_id, "tool", turn_sample_id, index)


def load_episode(run_id: str, problem_id: str, number: int, samples: Mapping[str, SampleRow],
                 runs: Mapping[str, ToolRunRow], ended: EpisodeRow | None) -> Episode:
    """The episode's turns, followed parent to child from turn 0 (ids are derived, so a
    stored turn is found by computing its id)."""
    turns: list[SampleRow] = []
    parent: str | None = None
    while True:
        sid = turn_id(run_id, problem_id, parent, number)
        turn = samples.get(sid)
        if turn is None:
            break
        turns.append(turn)
        parent = sid
    mine = {r.tool_run_id: r for r in runs.values() if r.episode == number}
    return Episode(number, turns, mine, ended)


def calls_of(turn: SampleRow, tools: Mapping[str, ToolSpec], caps: Caps) -> list[ToolCall]:
    """The tool calls a stored turn asked for (deterministic: read from its stored text)."""
    if turn.budget_exhausted:
        return []
    if caps.protocol == "openai":
        return openai_calls(json.loads(turn.tool_calls) if turn.tool_calls else None, tools, caps.max_input_chars)
    return text_calls(turn.completion or "", tools, caps.max_input_chars)


def assistant_message(turn: SampleRow, protocol: str) -> dict[str, Any]:
    """The turn's answer as it goes back into the conversation: the answer text only (the
    thinking is not re-sent), with its tool calls (OpenAI protocol)."""
    message: dict[str, Any] = {"role": "assistant", "content": turn.completion or ""}
    if protocol == "openai" and turn.tool_calls:
        message["tool_calls"] = json.loads(turn.tool_calls)
    return message


def turn_runs(episode: Episode, turn: SampleRow) -> list[ToolRunRow]:
    """The stored tool runs of a turn, in call order."""
    return sorted((r for r in episode.runs.values() if r.sample_id == turn.sample_id), key=lambda r: r.call_index)


def followups(runs: Sequence[ToolRunRow], protocol: str) -> list[dict[str, Any]]:
    """The messages that answer a turn's tool calls, from their stored runs: one `tool`
    message per call (OpenAI protocol), or one user message with every result (text)."""
    if not runs:
        return []
    if protocol == "openai":
        return [{"role": "tool", "tool_call_id": r.tool_call_id, "content": r.output} for r in runs]
    return [{"role": "user", "content": render_text_results([(r.tool, r.call_index, r.output) for r in runs])}]


def conversation(episode: Episode, protocol: str) -> list[dict[str, Any]]:
    """The whole conversation as stored: each turn's new messages and its answer, and the
    results of the last turn's tool calls if they ran. Needs nothing but the rows (and
    the protocol the run used), so `proofflow show --conversation` rebuilds it too."""
    messages: list[dict[str, Any]] = []
    for turn in episode.turns:
        messages.extend(json.loads(turn.prompt or "[]"))
        messages.append(assistant_message(turn, protocol))
    last = episode.last
    if last is not None:
        messages.extend(followups(turn_runs(episode, last), protocol))
    return messages


@dataclass(frozen=True)
class Ask:
    """Ask turn `turn`: send `messages`; store `new_messages` in the turn's prompt."""

    turn: int
    sample_id: str
    parent_id: str | None
    messages: list[dict[str, Any]]
    new_messages: list[dict[str, Any]]
    max_tokens: int


@dataclass(frozen=True)
class RunTools:
    """Run (or refuse) the last turn's calls that have no stored run."""

    turn: SampleRow
    calls: list[ToolCall]
    refused: dict[int, str]  # call index -> why (over its tool's call limit)


@dataclass(frozen=True)
class End:
    reason: str


Step = Ask | RunTools | End


def next_step(episode: Episode, opening: Sequence[Mapping[str, Any]], tools: Mapping[str, ToolSpec],
              caps: Caps, run_id: str, problem_id: str, problem_tokens: int,
              solving_tools: frozenset[str] = frozenset()) -> Step | None:
    """What the episode does next (None: it has ended and its end is stored)."""
    if episode.ended is not None:
        return None
    last = episode.last
    if last is None:
        if caps.max_tokens_per_problem is not None and problem_tokens >= caps.max_tokens_per_problem:
            return End(TOKEN_BUDGET)
        first = [dict(m) for m in opening]
        return Ask(0, turn_id(run_id, problem_id, None, episode.number), None, first, first,
                   _turn_budget(caps, problem_tokens))
    if last.budget_exhausted:
        return End(BUDGET_EXHAUSTED)
    calls = calls_of(last, tools, caps)
    missing = [c for c in calls if tool_run_id(run_id, problem_id, last.sample_id, c.index) not in episode.runs]
    if missing:
        return RunTools(last, missing, _over_limit(episode, calls, missing, caps))
    if not calls:
        return End(ANSWERED)
    mine = [episode.runs[tool_run_id(run_id, problem_id, last.sample_id, c.index)] for c in calls]
    if any(r.tool in solving_tools and r.outcome == "pass" for r in mine):
        return End(PROVED)
    if len(episode.turns) >= caps.max_turns:
        return End(MAX_TURNS)
    if caps.max_tokens_per_problem is not None and problem_tokens >= caps.max_tokens_per_problem:
        return End(TOKEN_BUDGET)
    if caps.wall_time_s is not None and work_time(episode) >= caps.wall_time_s:
        return End(WALL_TIME)
    new = followups(turn_runs(episode, last), caps.protocol)
    if caps.context_tokens is not None:
        # The last request's size is known exactly; what is added is estimated (4 chars a token).
        used = (last.prompt_tokens or 0) + (last.completion_tokens or 0) + sum(len(m["content"]) for m in new) // 4
        if used + caps.max_tokens_per_turn > caps.context_tokens:
            return End(CONTEXT_LENGTH)
    messages = conversation(episode, caps.protocol)
    return Ask(len(episode.turns), turn_id(run_id, problem_id, last.sample_id, episode.number), last.sample_id,
               messages, new, _turn_budget(caps, problem_tokens))


def _turn_budget(caps: Caps, problem_tokens: int) -> int:
    """max_tokens of the next turn: the per-turn cap, less if the problem's budget is nearly spent."""
    if caps.max_tokens_per_problem is None:
        return caps.max_tokens_per_turn
    return max(1, min(caps.max_tokens_per_turn, caps.max_tokens_per_problem - problem_tokens))


def _over_limit(episode: Episode, calls: Sequence[ToolCall], missing: Sequence[ToolCall], caps: Caps) -> dict[int, str]:
    """Calls beyond `max_calls_per_tool` for their tool in this episode: refused, in order."""
    this_turn = episode.last.sample_id if episode.last is not None else None
    used: dict[str, int] = {}
    for run in episode.runs.values():  # earlier turns' calls that ran
        if run.outcome != "refused" and run.error is None and run.sample_id != this_turn:
            used[run.tool] = used.get(run.tool, 0) + 1
    refused: dict[int, str] = {}
    for call in calls:  # the whole turn, in order, so a resumed turn decides the same
        if call.error is not None:
            continue
        n = used.get(call.name, 0)
        if n >= caps.max_calls_per_tool:
            refused[call.index] = f"limit reached: {caps.max_calls_per_tool} calls of {call.name} per episode"
        else:
            used[call.name] = n + 1
    return {i: why for i, why in refused.items() if any(c.index == i for c in missing)}


def work_time(episode: Episode) -> float:
    """The episode's model and tool time (not the time a killed run lay dead)."""
    return sum(t.latency_s or 0.0 for t in episode.turns) + sum(r.duration_s for r in episode.runs.values())


def problem_tokens(samples: Mapping[str, SampleRow]) -> int:
    """Tokens spent on a problem's turns so far, all episodes (the per-problem budget)."""
    return sum((s.prompt_tokens or 0) + (s.completion_tokens or 0) for s in samples.values()
               if s.stage == TURN_STAGE)
