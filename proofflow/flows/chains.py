"""Driving stage chains: each unit of work (a problem, or a chunk of problems) is a
generator that yields one step at a time — the task calls of a stage — and the driver
submits them, hands every returned output to the session as soon as that task returns,
and resumes the generator once its step is done, so the next stage plans from the
stored state.

Why step by step and not a chain of futures submitted up front: the number of tasks of
a stage (one per model request) depends on what the previous stage returned; no task
waits for another while holding a worker; there are never "not ready" task runs; and on
a failure nothing new starts while what is in flight settles, before shared resources
close.
"""

from __future__ import annotations

import concurrent.futures
import logging
import queue
from collections.abc import Generator, Iterable
from dataclasses import dataclass, field
from typing import Any

from proofflow.flows.naming import problem_label
from proofflow.flows.session import RunSession
from proofflow.tasks.context import RunContext, StageOutput, WorkItem
from proofflow.tasks.sampling import Plan

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Call:
    """One task run to submit: `task.submit(*args)`."""

    task: Any
    args: tuple[Any, ...]


# A unit's stages: yields the calls of each step (an empty step is skipped).
Chain = Generator[list[Call], None, None]


@dataclass(eq=False)
class _Running:
    chain: Chain
    outstanding: int = 0
    futures: list[Any] = field(default_factory=list)


def drive(session: RunSession, chains: Iterable[Chain], window: int) -> None:
    """Run the chains, at most `window` at once. Raises the first stage failure, after
    every task already in flight has returned and its rows are stored."""
    finished: queue.Queue[tuple[_Running, Any]] = queue.Queue()
    backlog = iter(chains)
    failure: BaseException | None = None
    active = 0

    def advance(unit: _Running) -> bool:
        """Submit the unit's next non-empty step; False when the chain is over."""
        nonlocal failure
        while True:
            try:
                step = next(unit.chain)
            except StopIteration:
                return False
            except Exception as exc:  # planning failed (a bad prompt template...)
                failure = failure or exc
                return False
            if not step:
                continue
            unit.outstanding = len(step)
            for call in step:
                future = call.task.submit(*call.args)
                future.add_done_callback(lambda f, unit=unit: finished.put((unit, f)))
            return True

    def start_next() -> bool:
        while failure is None:
            chain = next(backlog, None)
            if chain is None:
                return False
            if advance(_Running(chain)):
                return True
        return False

    for _ in range(window):
        if not start_next():
            break
        active += 1
    while active:
        unit, future = finished.get()
        unit.outstanding -= 1
        try:
            output = _output(future)
        except BaseException as exc:  # noqa: BLE001 - the stage's own error, re-raised below
            session.persist_failure(exc)
            if failure is None:
                failure = exc
        else:
            if isinstance(output, StageOutput):
                session.persist(output.rows, output.figures)
        if unit.outstanding:
            continue
        if failure is None and advance(unit):
            continue
        active -= 1
        if start_next():
            active += 1
    if failure is not None:
        raise failure


def asks(task: Any, ctx: RunContext, plans: list[Plan], names: Names, stage: str) -> list[Call]:
    """One task per model request, so each answer is stored the moment it returns."""
    per_problem: dict[str, int] = {}
    for plan in plans:
        per_problem[plan.problem_id] = per_problem.get(plan.problem_id, 0) + 1
    calls, seen = [], dict.fromkeys(per_problem, 0)
    for plan in plans:
        seen[plan.problem_id] += 1
        count = per_problem[plan.problem_id]
        suffix = f" · {seen[plan.problem_id]}/{count}" if count > 1 else ""
        calls.append(Call(task, (ctx, plan, names(stage, plan.problem_id) + suffix)))
    return calls


class Names:
    """Task run names: `stage · problem set · model · problem`."""

    def __init__(self, ctx: RunContext, items: list[WorkItem]):
        self.prefix = f"{ctx.problem_set} · {ctx.model}"
        self.labels = {i.problem.id: problem_label(i.problem, ctx.problem_set) for i in items}
        first = next(iter(self.labels.values()))
        self.unit = first if len(items) == 1 else f"{first} +{len(items) - 1}"

    def __call__(self, stage: str, problem_id: str | None = None) -> str:
        what = self.labels[problem_id] if problem_id else self.unit
        return f"{stage} · {self.prefix} · {what}"


def _output(future: Any) -> Any:
    """A finished task's return value. The thread runner's future holds the final state
    in memory: read it there, without the event-loop round trip of `future.result()`
    (~9 ms a task here, paid by the loop that submits the next stages). Failures and
    other runners go through Prefect's own path, which raises the stage's exception."""
    from prefect._internal.result_records import ResultRecord
    from prefect.client.schemas.objects import State

    wrapped = getattr(future, "wrapped_future", None)
    state = wrapped.result() if isinstance(wrapped, concurrent.futures.Future) else None
    if isinstance(state, State) and state.is_completed():
        if isinstance(state.data, ResultRecord):
            return state.data.result
        if isinstance(state.data, StageOutput):
            return state.data
    return future.result()
