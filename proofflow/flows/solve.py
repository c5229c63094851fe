"""The solve flow: a registered answer strategy's chain (gvr: generate → verify → repair
(R rounds) → select), per problem or chunk of problems.

This module only orchestrates: which units run, how many at once. The order of stages
is the strategy's (proofflow/strategies/), looked up by name; the stages themselves are
in proofflow/tasks/, the run's bookkeeping in flows/session.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger

from proofflow.config import Settings, load_settings
from proofflow.flows.chains import Chain, Names, drive
from proofflow.flows.naming import expand_run_name, problem_set_name
from proofflow.flows.runners import runner_from_environment, task_runner_for
from proofflow.flows.session import RunSession, RunSpec
from proofflow.problems import Problem, load_problems
from proofflow.storage.records import ProblemRow, Row, RunProblemRow
from proofflow.strategies.registry import ChainEnv, strategy
from proofflow.tasks.context import RunContext, WorkItem, to_json


def run_identity(settings: Settings, problem_file: str) -> dict[str, Any]:
    """The settings that change what a run's samples mean. Resuming a run with other
    values would mix incomparable samples, so it is refused."""
    return {
        "problem_file": Path(problem_file).name,
        "model": settings.endpoint.model,
        "api": settings.endpoint.api,
        "sampling": settings.sampling.model_dump(),
        # the strategy's own: its name, samples, rounds, selection, ...
        **strategy(settings.solve.strategy, "answer").identity_keys(settings),
        # Not `limit`: it picks which problems run, not what their samples mean, so a
        # run started with --limit 10 can be extended to the whole file.
    }


def default_run_name(problem_file: str, settings: Settings, problem_set: str | None = None) -> str:
    """Deterministic, so running the same command again resumes the same run."""
    s = settings.solve
    return f"{problem_set_name(problem_file, problem_set)}-{settings.endpoint.model}-n{s.samples}-r{s.repair_rounds}"


def problem_rows(problems: list[Problem], run_id: str) -> list[Row]:
    rows: list[Row] = []
    for position, p in enumerate(problems):
        rows.append(ProblemRow(
            problem_id=p.id, source=p.source, source_id=p.source_id, split=p.split, kind=p.kind,
            statement=p.statement, formal_statement=None, header=None,
            reference_answer=p.reference_answer, metadata=to_json(p.metadata),
        ))
        rows.append(RunProblemRow(run_id=run_id, problem_id=p.id, position=position,
                                  source_id=p.source_id, metadata=to_json(p.metadata)))
    return rows


def prepare_solve(
    problem_file: str, run_name: str | None = None, config_file: str | None = None,
    overrides: dict[str, Any] | None = None, *, settings: Settings | None = None,
    problem_set: str | None = None,
) -> RunSpec:
    """Resolve a solve run once: settings, problems (validated), the expanded name."""
    settings = settings or load_settings(Path(config_file) if config_file else None, overrides)
    problems = load_problems(problem_file, limit=settings.solve.limit, dedupe=settings.problems.dedupe,
                             max_line_bytes=settings.problems.max_line_bytes)
    label = problem_set_name(problem_file, problem_set)
    name = expand_run_name(run_name) if run_name else default_run_name(problem_file, settings, problem_set)
    return RunSpec("solve", str(problem_file), label, name, settings, problems,
                   run_identity(settings, problem_file), strategy(settings.solve.strategy, "answer").run_label,
                   lambda run_id: problem_rows(problems, run_id))


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
                  settings.solve.problems_in_flight)
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
