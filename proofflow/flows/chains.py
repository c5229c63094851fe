"""Driving stage chains: each unit of work (a problem, or a chunk of problems) is a
generator that yields one step at a time — the task calls of a stage — and the driver
submits them, hands every returned output to the session as soon as that task returns,
and resumes the generator once its step is done, so the next stage plans from the
stored state.

Why step by step and not a chain of futures submitted up front: the number of tasks of
a stage (which requests, which candidates) depends on what the previous stage returned; no task
waits for another while holding a worker; there are never "not ready" task runs; and on
a failure nothing new starts while what is in flight settles, before shared resources
close.

Where a call runs is the call's own, typed (`Call.work`), never a branch on task names:
- `Work.MODEL` (the stage waits on the model: `ask`, an agent's turn): a thread of the
  driver's own ThreadPoolTaskRunner in the flow's process, whatever `runner.kind` is.
  Waiting is I/O; the model client's per-endpoint semaphore bounds it (and, where flows
  share an endpoint, Prefect's global slots taken in blocks: tasks/prefect_limits.py).
  Shipping it to a Dask worker cost the flow process ~36 ms of CPU per sample and the
  worker two Prefect API calls per request (issue 19).
- `Work.LIGHT` (grading answers, voting, finishing a problem's result): a few ms of work
  on rows the flow already holds (an answer check runs in the answer pool's own child
  processes, with its timeout): a task run of the driver's own thread runner too, so the
  UI keeps its `verify · r1 · …` task runs. Shipped to Dask it cost ~52 ms of flow CPU and
  ~0.5 s of wall time a task run, 10-100x the work: the 200x16 bench's verify and select
  stages made a Dask run 67-96 s against 12-14 s with threads (1.1x after this).
- `Work.COMPUTE` (sandbox runs, formal checks, hole automation, agent and search steps):
  the flow's configured task runner (threads, Dask, Ray), which is what scales CPU work out.
Every output is handed to the session in this process either way (the one writer).

Granularity, chosen from measurements on this shared 2-core machine with a real `prefect
server`: a task run in the driver's thread runner costs the flow's process ~7 ms of CPU
and the Prefect server ~21 ms working through its events (300 no-op task runs: 2.1-2.6 s
of flow CPU, 6.2-6.6 s of server CPU); one shipped to a Dask LocalCluster (2 workers)
~52 ms of flow CPU (508 ms wall). So a stage of a unit is one task run: one `ask` for all
of the unit's requests of a stage (tasks/ask.py; each answer is still handed over and
stored the moment it returns: `emit`, the `_Partial`s below), one `verify`, one
`select`. A unit is `problems_per_task` problems: 3 task runs per unit for a run without
repairs, whatever the samples per problem. At one task run per request the 200 x 16
bench spent ~8 s of CPU (flow and server) on 300 task runs, more than the bare script's
whole run. The UI keeps a task run per stage, named by its round and its problems.
"""

from __future__ import annotations

import concurrent.futures
import enum
import logging
import queue
from collections.abc import Generator, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from proofflow.config import Settings
from proofflow.flows.naming import problem_label
from proofflow.flows.session import RunSession
from proofflow.tasks.context import RunContext, StageOutput, WorkItem, outbox
from proofflow.tasks.sampling import Plan

log = logging.getLogger(__name__)


class Work(enum.Enum):
    """What a call's task spends its time on, which decides where it runs (module doc)."""

    MODEL = "waits on the model"  # I/O: a thread of the flow's own process
    LIGHT = "bookkeeping"  # cheaper than shipping it: a thread of the flow's own process
    COMPUTE = "computes"  # checks, sandbox runs, automation: the flow's task runner


@dataclass(frozen=True)
class Call:
    """One task run to submit: `task(*args)`, where `work` says (module doc)."""

    task: Any
    args: tuple[Any, ...]
    work: Work = Work.COMPUTE


# A unit's stages: yields the calls of each step (an empty step is skipped).
Chain = Generator[list[Call], None, None]


@dataclass(frozen=True)
class _Partial:
    """Rows a task of this process handed over before returning (tasks/context.py `emit`)."""

    output: StageOutput


@dataclass(eq=False)
class _Running:
    chain: Chain
    outstanding: int = 0
    futures: list[Any] = field(default_factory=list)


@dataclass(frozen=True)
class ModelCalls:
    """How this process runs the calls that wait on the model (`Work.MODEL`)."""

    # The requests the endpoint takes at once (max_concurrency per base URL): more
    # threads would only queue in the client's semaphore.
    threads: int = 8
    # Other flows share the endpoint (runner.global_limits): the process's requests also
    # hold Prefect global slots, taken in blocks (tasks/prefect_limits.py SlotBlocks).
    shared: bool = False
    limits: tuple[tuple[str, int], ...] = ()  # the Prefect limits to create: (name, slots)

    @classmethod
    def of(cls, settings: Settings) -> ModelCalls:
        from proofflow.flows.runners import endpoint_limits

        e = settings.endpoint
        shared = settings.runner.global_limits
        return cls(e.max_concurrency * len(e.base_urls), shared,
                   tuple(endpoint_limits(e).items()) if shared else ())


def drive(session: RunSession, chains: Iterable[Chain], window: int, models: ModelCalls | None = None) -> None:
    """Run the chains, at most `window` at once; calls that wait on the model run as
    `models` says, in this process, and light calls in threads of this process. Raises
    the first stage failure, after every task already in flight has returned and its
    rows are stored."""
    from prefect.task_runners import ThreadPoolTaskRunner

    light: ThreadPoolTaskRunner[Any] = ThreadPoolTaskRunner(max_workers=max(1, min(window, 4)))
    with _model_runner(models or ModelCalls()) as model_runner, light:
        _drive(session, chains, window, {Work.MODEL: model_runner, Work.LIGHT: light})


@contextmanager
def _model_runner(models: ModelCalls) -> Iterator[Any]:
    """The driver's own thread task runner for `Work.MODEL` calls. Its task runs belong to
    the current flow run (the submitting thread's context is copied into each, so they
    also see `sharing_endpoints`)."""
    from prefect.task_runners import ThreadPoolTaskRunner

    from proofflow.flows.runners import upsert_limits
    from proofflow.tasks.resources import sharing_endpoints

    if models.shared:
        upsert_limits(dict(models.limits))  # before the first request takes a slot of them
    runner: ThreadPoolTaskRunner[Any] = ThreadPoolTaskRunner(max_workers=max(1, models.threads))
    with sharing_endpoints(models.shared), runner:
        yield runner


def _submit(call: Call, local: dict[Work, Any], receive: Any) -> Any:
    """Model and light calls: task runs of the driver's own thread runners, in this
    process, which may hand rows to `receive` before they return; the rest: task runs
    of the flow's runner."""
    runner = local.get(call.work)
    if runner is not None:
        from prefect.utilities.callables import get_call_parameters

        with outbox(receive):  # the task's thread gets a copy of this context
            return runner.submit(call.task, get_call_parameters(call.task.fn, call.args, {}))
    return call.task.submit(*call.args)


def _drive(session: RunSession, chains: Iterable[Chain], window: int, local: dict[Work, Any]) -> None:
    finished: queue.Queue[tuple[_Running, Any]] = queue.Queue()  # (unit, future or _Partial)
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
                future = _submit(call, local, lambda out, unit=unit: finished.put((unit, _Partial(out))))
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
        if isinstance(future, _Partial):  # queued before its task's return: stored first
            session.persist(future.output.rows, future.output.figures)
            continue
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
    """One task run for all of a unit's requests of a stage (module doc: granularity);
    it waits on the model, so it runs in the flow's process (`Work.MODEL`), and hands
    each answer over as it returns."""
    return [Call(task, (ctx, plans, names(stage)), Work.MODEL)] if plans else []


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
