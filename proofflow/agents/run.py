"""Doing an episode's next step: ask the model for a turn, run the last turn's tool calls,
or record the end. Plain functions of what they are handed (the step from
agents/episode.py, a model client, the tool executors) to the rows they made; the agent
strategies wrap them in Prefect tasks, and tests call them directly.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from proofflow.agents.episode import (
    CONTEXT_LENGTH,
    MODEL_ERROR,
    TURN_STAGE,
    Ask,
    Caps,
    End,
    Episode,
    RunTools,
    tool_run_id,
)
from proofflow.agents.tools import ToolSpec
from proofflow.keys import sample_id, seed_for
from proofflow.llm.client import EndpointError, ModelClient, Request
from proofflow.storage.records import CallRow, EpisodeRow, Row, SampleRow, ToolRunRow


@dataclass(frozen=True)
class ToolOutcome:
    """What one tool run returns: the text the model sees and, for checking tools, how the
    check came out (`pass` / `fail` / `timeout` / `error`) and its verdict details."""

    output: str
    outcome: str = "ok"
    details: dict[str, Any] = field(default_factory=dict)


Executor = Callable[[Mapping[str, Any]], ToolOutcome]


def ask_turn(client: ModelClient, ask: Ask, episode: Episode, run_id: str, problem_id: str,
             tools: Mapping[str, ToolSpec], caps: Caps) -> tuple[list[Row], End | None]:
    """One model request for the episode's next turn: its call rows and the turn's sample.
    A request the server rejects for good (too long for its context, or malformed) ends
    the episode cleanly instead of failing the run: the call rows and that End come back
    (the caller stores the end with its candidate, `end_rows`)."""
    request = Request(
        prompt="", n=1, seed=seed_for(ask.sample_id), messages=ask.messages,
        tools=[t.openai() for t in tools.values()] if caps.protocol == "openai" else None,
        max_tokens=ask.max_tokens,
        context={"run_id": run_id, "problem_id": problem_id, "stage": TURN_STAGE},
    )
    try:
        response = client.complete(request)
    except EndpointError as exc:
        if not _rejected(exc):
            raise  # unreachable server: the run fails and resumes here later
        text = str(exc).lower()
        reason = CONTEXT_LENGTH if "context" in text or "too long" in text or "max_tokens" in text else MODEL_ERROR
        return list(exc.calls), End(reason)
    choice = response.choices[0]
    params = dict(client.sampling_params(), max_tokens=ask.max_tokens)
    turn = SampleRow(
        sample_id=ask.sample_id, run_id=run_id, problem_id=problem_id, stage=TURN_STAGE,
        parent_id=ask.parent_id, idx=episode.number, round=ask.turn, call_id=response.call_id,
        model=response.model, endpoint=response.endpoint, params=json.dumps(params, default=str),
        seed=response.seed, prompt=json.dumps(ask.new_messages, ensure_ascii=False),
        completion=choice.text, finish_reason=choice.finish_reason,
        prompt_tokens=response.prompt_tokens, completion_tokens=choice.completion_tokens,
        tokens_exact=choice.tokens_exact, latency_s=response.latency_s, cost=response.cost,
        reasoning=choice.reasoning, reasoning_tokens=choice.reasoning_tokens,
        reasoning_tokens_source=choice.reasoning_tokens_source,
        budget_exhausted=choice.budget_exhausted if choice.reasoning is not None else None,
        tool_calls=json.dumps(choice.tool_calls, ensure_ascii=False) if choice.tool_calls else None,
    )
    return [*(c for c in response.calls if isinstance(c, CallRow)), turn], None


def _rejected(exc: EndpointError) -> bool:
    """The server answered with a 4xx other than 408/409/425/429: asking again will not help."""
    for call in exc.calls:
        if call.error and call.error.startswith("HTTP 4") and not call.error.startswith(("HTTP 408", "HTTP 409",
                                                                                          "HTTP 425", "HTTP 429")):
            return True
    return False


def run_tools(step: RunTools, episode: Episode, run_id: str, problem_id: str, executors: Mapping[str, Executor],
              caps: Caps) -> list[Row]:
    """Run the turn's missing calls in order: refused ones (bad call, over the limit) get
    their error as output; a tool that raises is an `error` outcome, never a crash."""
    rows: list[Row] = []
    for call in step.calls:
        started = time.perf_counter()
        error = call.error or step.refused.get(call.index)
        if error is not None:
            result = ToolOutcome(f"Tool error: {error}", "refused")
        else:
            try:
                result = executors[call.name](call.arguments)
            except Exception as exc:  # the tool itself failed: the model is told, the run goes on
                error = f"{type(exc).__name__}: {exc}"
                result = ToolOutcome(f"Tool error: the tool failed ({error})", "error")
        output = result.output if len(result.output) <= caps.max_output_chars else (
            result.output[:caps.max_output_chars] + f"\n… ({len(result.output) - caps.max_output_chars:,} "
            "more characters cut)")
        rows.append(ToolRunRow(
            tool_run_id=tool_run_id(run_id, problem_id, step.turn.sample_id, call.index), run_id=run_id,
            problem_id=problem_id, sample_id=step.turn.sample_id, episode=episode.number, turn=step.turn.round,
            call_index=call.index, tool_call_id=call.call_id, tool=call.name, input=call.raw, output=output,
            outcome=result.outcome, error=error, details=json.dumps(result.details, default=str) if result.details
            else None, duration_s=time.perf_counter() - started,
        ))
    return rows


def end_rows(end: End, episode: Episode, run_id: str, problem_id: str, candidate_stage: str | None,
             candidate_text: str, note: str | None = None) -> list[Row]:
    """The episode's end: its `episodes` row and (with `candidate_stage`) the candidate
    sample that is graded for it — a sample no model call made (model 'episode'), whose
    parent is the last turn."""
    last = episode.last
    rows: list[Row] = []
    candidate_id = None
    if candidate_stage is not None:
        candidate_id = sample_id(run_id, problem_id, candidate_stage, last.sample_id if last else None,
                                 episode.number)
        rows.append(SampleRow(
            sample_id=candidate_id, run_id=run_id, problem_id=problem_id, stage=candidate_stage,
            parent_id=last.sample_id if last else None, idx=episode.number, round=len(episode.turns),
            call_id=None, model="episode", endpoint=None, params=None, seed=None, prompt=note,
            completion=candidate_text, finish_reason=end.reason, prompt_tokens=0, completion_tokens=0,
            tokens_exact=True, latency_s=0.0, cost=None,
        ))
    rows.append(EpisodeRow(
        run_id=run_id, problem_id=problem_id, episode=episode.number, turns=len(episode.turns),
        tool_calls=len(episode.runs), ended=end.reason, final_sample_id=last.sample_id if last else None,
        candidate_sample_id=candidate_id,
    ))
    return rows


