"""The solve flow: a registered answer strategy's chain (gvr: generate → verify → repair
(R rounds) → select), per problem or chunk of problems.

This module only orchestrates: which units run, how many at once. The order of stages
is the strategy's (proofflow/strategies/), looked up by name; the stages themselves are
in proofflow/tasks/, the run's bookkeeping in flows/session.py.
"""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger

from proofflow.config import Settings
from proofflow.flows.chains import Chain, ModelCalls, Names, drive
from proofflow.flows.naming import expand_run_name, problem_set_name
from proofflow.flows.runners import runner_from_environment, task_runner_for
from proofflow.flows.session import RunSession, RunSpec
from proofflow.flows.solve_spec import (  # what a run is, resolved before Prefect starts
    default_run_name,
    prepare_solve,
    problem_rows,
    run_identity,
)
from proofflow.strategies.registry import ChainEnv, strategy
from proofflow.tasks.context import RunContext, WorkItem

__all__ = ["default_run_name", "execute_solve", "prepare_solve", "problem_rows", "run_identity", "run_prepared",
           "run_solve", "solve_flow"]


# --------------------------------------------------------------------------- the pipeline

def solve_chain(ctx: RunContext, items: list[WorkItem], persist: Any = None) -> Chain:
    """The run's strategy's stages for one chunk of problems (strategies/<name>/)."""
    env = ChainEnv(names=Names(ctx, items), persist=persist or (lambda rows: None))
    return strategy(ctx.settings.solve.strategy, "answer").chain(ctx, items, env)


def chunked(items: list[WorkItem], size: int) -> list[list[WorkItem]]:
    return [items[i:i + size] for i in range(0, len(items), size)]


def execute_solve(spec: RunSpec) -> dict[str, Any]:
    """Run (or resume) a resolved solve run in the current flow."""
    from proofflow.tasks import resources

    logger = get_run_logger()
    settings = spec.settings
    try:
        with RunSession(spec, counted="solved") as session:
            ctx = RunContext(session.run_id, spec.name, spec.problem_set, settings)
            todo = session.todo
            logger.info("run %s: %d problems, %d already done, %d to do",
                        spec.name, session.total, session.total - len(todo), len(todo))
            drive(session, (solve_chain(ctx, chunk, session.persist)
                            for chunk in chunked(todo, settings.solve.problems_per_task)),
                  settings.solve.problems_in_flight, ModelCalls.of(settings))
    finally:
        resources.close_all()  # only after every task has returned (drive settles them)
    return session.summary


@flow(
    name="solve",
    flow_run_name=lambda: _flow_run_name(),
    log_prints=True,
    persist_result=False,
    # Deployments use this runner; run_solve() sizes it from the settings (task_threads).
    task_runner=runner_from_environment(threads=32),
)
def solve_flow(
    problem_file: str,
    run_name: str | None = None,
    config_file: str | None = None,
    overrides: dict[str, Any] | None = None,
    problem_set: str | None = None,
    spec: Any = None,
) -> dict[str, Any]:
    """Run (or resume) one solve run: `run_name` may contain {date} / {datetime};
    `problem_set` names the data set (default: from the file's path). `spec` is the run
    already resolved by the CLI (then the other parameters only label the flow run)."""
    if not isinstance(spec, RunSpec):
        spec = prepare_solve(problem_file, run_name, config_file, overrides, problem_set=problem_set)
    return execute_solve(spec)


def task_threads(settings: Settings) -> int:
    """Task-runner threads: every model request of the window's stages is its own task
    and holds a thread while it waits for the model, so enough for the endpoint's
    concurrency, plus one checking task per chain."""
    s, e = settings.solve, settings.endpoint
    requests = s.problems_in_flight * s.problems_per_task * max(1, s.samples)
    return s.problems_in_flight + max(1, min(requests, e.max_concurrency * len(e.base_urls)))


def run_prepared(spec: RunSpec) -> dict[str, Any]:
    """Run a resolved solve run with the task runner sized from its settings."""
    configured = solve_flow.with_options(
        task_runner=task_runner_for(spec.settings, task_threads(spec.settings)),
        flow_run_name=spec.flow_run_name,
    )
    return configured(problem_file=spec.problem_file, run_name=spec.name, problem_set=spec.problem_set,
                      spec=spec)


def run_solve(
    problem_file: str, run_name: str | None = None, config_file: str | None = None,
    overrides: dict[str, Any] | None = None, problem_set: str | None = None,
) -> dict[str, Any]:
    """Entry point for scripts and tests: resolve the run once, then run it."""
    return run_prepared(prepare_solve(str(problem_file), run_name, config_file, overrides,
                                      problem_set=problem_set))


def _flow_run_name() -> str:
    """"solve · gsm8k · gsm8k-2026-11-24" in the Prefect UI."""
    from prefect.runtime import flow_run

    params = flow_run.parameters
    run = params.get("run_name") or "default name"
    return f"solve · {problem_set_name(params['problem_file'], params.get('problem_set'))} · {expand_run_name(run)}"
