"""The agent strategies' stages: one Prefect task run per episode step (a turn asked, a
turn's tool calls run, an end recorded), named with the turn (`turn 3 · gsm8k · model ·
problem · episode 1`), and the chain that plans them from the stored rows.

Why a step per task run: a turn's answer is stored the moment it arrives, before its tool
calls run, and the tool runs are stored before the next turn is asked; so a run killed
anywhere resumes at the last stored step and repeats no paid-for model call and no tool
run (tests/agents/test_agent_flows.py kills one with SIGKILL).

A strategy describes its agent with an `AgentSpec` (tools, caps, the opening messages,
the tool executors, the candidate an ended episode leaves for grading); grading the
candidates is the strategy's own (tir: the answer verifier and the vote; agent: the
formal check and audit).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol

from prefect import task
from prefect.cache_policies import NO_CACHE

from proofflow.agents.episode import (
    Ask,
    Caps,
    End,
    Episode,
    RunTools,
    Step,
    load_episode,
    next_step,
    problem_tokens,
)
from proofflow.agents.run import Executor, ask_turn, end_rows, run_tools
from proofflow.agents.tools import ToolSpec
from proofflow.flows.chains import Call, Chain
from proofflow.storage.db import ProblemState
from proofflow.storage.records import SampleRow
from proofflow.tasks.context import RunContext, StageOutput, WorkItem


class AgentSpec(Protocol):
    """What an agent strategy says about its episodes."""

    @property
    def caps(self) -> Caps: ...

    @property
    def episodes(self) -> int: ...  # per problem

    @property
    def candidate_stage(self) -> str: ...  # the stage of the sample an ended episode leaves for grading

    @property
    def tools(self) -> Mapping[str, ToolSpec]: ...

    @property
    def solving_tools(self) -> frozenset[str]: ...  # a `pass` from one of these ends the episode (PROVED)

    def opening(self, item: WorkItem) -> list[dict[str, Any]]: ...

    def executors(self, ctx: RunContext, item: WorkItem, out: StageOutput, extra: Any) -> Mapping[str, Executor]: ...

    def candidate(self, item: WorkItem, episode: Episode) -> str: ...


def episode_of(ctx: RunContext, item: WorkItem, number: int) -> Episode:
    s = item.state
    return load_episode(ctx.run_id, item.problem.id, number, s.samples, s.tool_runs, s.episodes.get(number))


def plan(ctx: RunContext, item: WorkItem, spec: AgentSpec) -> list[tuple[int, Step]]:
    """Each unfinished episode's next step, from the stored rows."""
    tokens = problem_tokens(item.state.samples)
    steps = []
    for number in range(spec.episodes):
        step = next_step(episode_of(ctx, item, number), spec.opening(item), spec.tools, spec.caps, ctx.run_id,
                         item.problem.id, tokens, spec.solving_tools)
        if step is not None:
            steps.append((number, step))
    return steps


def label(ctx: RunContext, item: WorkItem, number: int, step: Step) -> str:
    where = f"{ctx.problem_set} · {ctx.model} · {item.problem.source_id} · episode {number}"
    if isinstance(step, Ask):
        return f"turn {step.turn} · {where}"
    if isinstance(step, RunTools):
        names = ", ".join(c.name for c in step.calls)
        return f"tools · turn {step.turn.round} ({names}) · {where}"
    return f"end ({step.reason}) · {where}"


def episodes_chain(ctx: RunContext, items: list[WorkItem], spec: AgentSpec, extra: Any = None) -> Chain:
    """Step every unfinished episode of `items` until all have ended (each `yield` is one
    step of each; it resumes once their rows are stored)."""
    while True:
        calls = [Call(agent_step, (ctx, item, spec, number, step, extra, label(ctx, item, number, step)))
                 for item in items for number, step in plan(ctx, item, spec)]
        if not calls:
            return
        yield calls


def do_step(ctx: RunContext, item: WorkItem, spec: AgentSpec, number: int, step: Step, extra: Any) -> StageOutput:
    """Do one planned step (the task's body; tests call it directly)."""
    from proofflow.tasks import resources

    out = StageOutput()
    episode = episode_of(ctx, item, number)
    if isinstance(step, Ask):
        client = resources.model_client(ctx.settings.endpoint, ctx.settings.sampling, ctx.settings.reasoning)
        rows, end = ask_turn(client, step, episode, ctx.run_id, item.problem.id, spec.tools, spec.caps)
        out.add(*rows)
        out.figures["agent_turns_asked"] = 1  # in this process: a resumed run shows what it redid
        if end is not None:
            out.add(*end_rows(end, episode, ctx.run_id, item.problem.id, spec.candidate_stage,
                              spec.candidate(item, episode)))
    elif isinstance(step, RunTools):
        executors = spec.executors(ctx, item, out, extra)
        runs = run_tools(step, episode, ctx.run_id, item.problem.id, executors, spec.caps)
        out.add(*runs)
        out.figures["agent_tool_runs"] = len(runs)
    else:
        assert isinstance(step, End)
        out.add(*end_rows(step, episode, ctx.run_id, item.problem.id, spec.candidate_stage,
                          spec.candidate(item, episode)))
    return out


@task(name="agent-step", task_run_name="{label}", cache_policy=NO_CACHE)
def agent_step(ctx: RunContext, item: WorkItem, spec: AgentSpec, number: int, step: Step, extra: Any,
               label: str) -> StageOutput:
    return do_step(ctx, item, spec, number, step, extra)


def candidates_only(item: WorkItem, stage: str) -> WorkItem:
    """A view of the item holding only the episodes' candidates (the turns are not
    answers: graders and the vote must see one candidate per episode)."""
    s = item.state
    kept = {k: v for k, v in s.samples.items() if v.stage == stage}
    verdicts = {k: v for k, v in s.verdicts.items() if k[0] in kept}
    return WorkItem(item.problem, ProblemState(kept, verdicts, s.result, {}, dict(s.episodes)))


def last_turn_text(item: WorkItem, episode: Episode) -> str:
    last: SampleRow | None = episode.last
    return (last.completion or "") if last is not None else ""


ExecutorFactory = Callable[[RunContext, WorkItem, StageOutput, Any], Mapping[str, Executor]]
