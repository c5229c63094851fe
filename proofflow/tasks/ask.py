"""Stage task: ask the model. The one task every generating stage submits (generate,
repair, draft, sketch, a strategy's own turns): one task run per stage of a unit (a
problem, or a chunk of `problems_per_task` problems), whose planned requests go out at
once. Each answer's rows are handed to the flow the moment it returns
(tasks/context.py `emit`), so a crash loses no paid-for answer and the next stage
still plans from what was stored. What differs between stages is the plans
(tasks/sampling.py: their chat messages, sample ids, parent, round), not the task.

Why a task run per unit and stage, not per request (issue 19, measured on a real
`prefect server` here, 300 no-op task runs from a thread runner): a task run costs the
flow's process ~7 ms of CPU and the Prefect server ~21 ms working through its events,
so at one per request a 200 × 16 run spent more CPU on task runs than the whole bare
script does. The UI still shows a task run per stage, named by its round and problems.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor, as_completed
from contextvars import copy_context

from prefect import task
from prefect.cache_policies import NO_CACHE

from proofflow.tasks.context import RunContext, StageOutput, emit, paid_for
from proofflow.tasks.sampling import Plan, sample_request


@task(name="ask", task_run_name="{label}", cache_policy=NO_CACHE)
def ask(ctx: RunContext, plans: list[Plan], label: str) -> StageOutput:
    return ask_all(ctx, plans)


def ask_all(ctx: RunContext, plans: list[Plan]) -> StageOutput:
    """Send every plan's request at once (the model client's per-endpoint bound holds
    them back); emit each answer's rows as it returns. Returns what nobody took (no
    outbox). A request that fails for good does not stop the others: once all have
    returned, the first failure is raised, carrying the rows no outbox took and what
    the other failed requests paid for (`stage_output`, `calls`: RunSession.persist_failure)."""
    if len(plans) == 1:  # returned at once anyway: no thread, nothing to hand over early
        return sample_request(ctx, plans[0])
    kept, failures = StageOutput(), []
    e = ctx.settings.endpoint
    threads = max(1, min(len(plans), e.max_concurrency * len(e.base_urls)))
    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="ask") as pool:
        # Each thread runs in a copy of this context: the task run's, the outbox, the
        # endpoint-sharing flag (tasks/resources.py).
        futures = [pool.submit(copy_context().run, sample_request, ctx, plan) for plan in plans]
        for future in as_completed(futures):
            try:
                out = future.result()
            except Exception as exc:  # noqa: BLE001 - the request's own failure, raised below
                failures.append(exc)
                continue
            if not emit(out):
                kept.extend(out)
    if not failures:
        return kept
    first, others = failures[0], failures[1:]
    for other in others:
        salvaged = paid_for(other)
        if not emit(salvaged):
            kept.extend(salvaged)
    own = getattr(first, "stage_output", None)
    if isinstance(own, StageOutput):
        kept.extend(own)
    first.stage_output = kept  # type: ignore[attr-defined]
    raise first
