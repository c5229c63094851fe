"""The solve flow: generate → verify → repair (R rounds) → select, per problem.

This module only orchestrates: which stage runs after which, for which problems, how
many at once, and what is skipped because the database already has it. The stages
themselves are in proofflow/tasks/.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_progress_artifact, update_progress_artifact
from prefect.task_runners import ThreadPoolTaskRunner

from proofflow.config import Settings, load_settings
from proofflow.flows.common import (
    artifact_key,
    expand_run_name,
    publish_summary,
    run_chains,
    start_run,
)
from proofflow.flows.progress import Progress, publish
from proofflow.problems import Problem, load_problems
from proofflow.storage.db import Store
from proofflow.storage.records import ProblemRow, RunProblemRow
from proofflow.tasks.context import RunContext, WorkItem, close_runtime, open_runtime, to_json
from proofflow.tasks.execute import execute
from proofflow.tasks.generate import generate
from proofflow.tasks.repair import repair
from proofflow.tasks.select import select
from proofflow.tasks.verify import verify


def run_identity(settings: Settings, problem_file: str) -> dict[str, Any]:
    """The settings that change what a run's samples mean. Resuming a run with other
    values would mix incomparable samples, so it is refused."""
    return {
        "strategy": settings.solve.strategy,
        "problem_file": Path(problem_file).name,
        "model": settings.endpoint.model,
        "api": settings.endpoint.api,
        "sampling": settings.sampling.model_dump(),
        "samples": settings.solve.samples,
        "repair_rounds": settings.solve.repair_rounds,
        "repair_after_pass": settings.solve.repair_after_pass,
        "selection": settings.solve.selection,
        "vote_weights": settings.solve.vote_weights.model_dump(),
        "repair_on": settings.solve.repair_verifier,
        "exec_timeout_s": settings.solve.exec_timeout_s,
        "allow_last_number": settings.solve.allow_last_number,
        # Not `limit`: it picks which problems run, not what their samples mean, so a
        # run started with --limit 10 can be extended to the whole file.
    }


def default_run_name(problem_file: str, settings: Settings) -> str:
    """Deterministic, so running the same command again resumes the same run."""
    s = settings.solve
    return f"{Path(problem_file).stem}-{settings.endpoint.model}-n{s.samples}-r{s.repair_rounds}"


def problem_rows(problems: list[Problem], run_id: str) -> list:
    rows: list = []
    for position, p in enumerate(problems):
        rows.append(ProblemRow(
            problem_id=p.id, source=p.source, source_id=p.source_id, split=p.split, kind=p.kind,
            statement=p.statement, formal_statement=None, header=None,
            reference_answer=p.reference_answer, metadata=to_json(p.metadata),
        ))
        rows.append(RunProblemRow(run_id=run_id, problem_id=p.id, position=position))
    return rows


def chunked(items: list[WorkItem], size: int) -> list[list[WorkItem]]:
    return [items[i:i + size] for i in range(0, len(items), size)]


@flow(
    name="solve",
    flow_run_name=lambda: _flow_run_name(),
    log_prints=True,
    persist_result=False,
    # Deployments use this runner; run_solve() sizes it from the settings (task_threads).
    task_runner=ThreadPoolTaskRunner(max_workers=32),
)
def solve_flow(
    problem_file: str,
    run_name: str | None = None,
    config_file: str | None = None,
    overrides: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Run (or resume) one solve run: `run_name` may contain {date} / {datetime}."""
    logger = get_run_logger()
    settings = load_settings(Path(config_file) if config_file else None, overrides)
    problems = load_problems(problem_file, limit=settings.solve.limit)
    name = expand_run_name(run_name) if run_name else default_run_name(problem_file, settings)
    store = Store(settings.storage.db_path, lock_timeout_s=settings.storage.lock_timeout_s)
    run = start_run(store, name, settings.solve.strategy, problem_file, settings,
                    run_identity(settings, problem_file))
    ctx = RunContext(run_id=run.run_id, run_name=name, problem_set=Path(problem_file).stem, settings=settings)

    state = store.load_run_state(run.run_id)
    todo = [WorkItem(p, state.problem(p.id)) for p in problems if not state.done(p.id)]
    already = len(problems) - len(todo)
    solved = sum(1 for p in problems if state.done(p.id) and state.problems[p.id].result.solved)
    logger.info("run %s: %d problems, %d already done, %d to do", name, len(problems), already, len(todo))

    rt = open_runtime(ctx)
    status = "failed"
    try:
        rt.writer.put(*problem_rows(problems, run.run_id))
        progress_id = create_progress_artifact(
            progress=100.0 * already / len(problems), key=artifact_key("progress", name),
            description=f"{name}: problems done out of {len(problems)}",
        )
        publish(Progress(name, already, len(problems), solved))
        done, tokens = already, 0

        def submit(chunk: list[WorkItem]) -> list[Any]:
            label = _label(ctx, chunk)
            chain = [generate.submit(ctx, chunk, label)]
            for round_ in range(0, settings.solve.repair_rounds + 1):
                if round_ > 0:
                    chain.append(repair.submit(ctx, chain[-1], round_, label))
                if settings.solve.runs_code:  # pot / csv: run the model's code first
                    chain.append(execute.submit(ctx, chain[-1], label))
                chain.append(verify.submit(ctx, chain[-1], label))
            chain.append(select.submit(ctx, chain[-1], label))
            return chain

        def finished(results: list[Any], chain: list[Any]) -> None:
            nonlocal done, solved, tokens
            for result in results:
                done += 1
                solved += int(result.solved)
                publish(Progress(name, done, len(problems), solved, result.problem_id))
            tokens += _tokens(chain[-2].result())
            update_progress_artifact(
                progress_id, 100.0 * done / len(problems),
                description=f"{name}: {done}/{len(problems)} problems done, {solved} solved, "
                            f"{tokens:,} tokens spent on them",
            )

        run_chains(chunked(todo, settings.solve.problems_per_task),
                   settings.solve.problems_in_flight, submit, finished)
        status = "completed"
    finally:
        close_runtime(ctx)  # flushes everything queued, also when a stage failed
        store.finish_run(run.run_id, status)

    summary = publish_summary(store, run.run_id, name)
    return summary


def task_threads(settings: Settings) -> int:
    """Threads for a window of problems_in_flight chains (generate, then verify — and
    execute, for pot/csv — per round, repairs, select), all of which may hold a thread
    while waiting on their upstream stage."""
    stages_per_round = 3 if settings.solve.runs_code else 2
    return settings.solve.problems_in_flight * (1 + stages_per_round * (1 + settings.solve.repair_rounds))


def run_solve(
    problem_file: str, run_name: str | None = None, config_file: str | None = None,
    overrides: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Entry point for the CLI and scripts: sizes the task runner from the settings."""
    settings = load_settings(Path(config_file) if config_file else None, overrides)
    load_problems(problem_file, limit=settings.solve.limit)  # fail on a bad file before Prefect starts
    name = expand_run_name(run_name) if run_name else default_run_name(problem_file, settings)
    configured = solve_flow.with_options(
        task_runner=ThreadPoolTaskRunner(max_workers=task_threads(settings)),
    )
    return configured(problem_file=str(problem_file), run_name=name, config_file=config_file,
                      overrides=overrides)


def _tokens(items: list[WorkItem]) -> int:
    return sum((s.prompt_tokens or 0) + (s.completion_tokens or 0)
               for item in items for s in item.state.samples.values())


def _flow_run_name() -> str:
    """"solve · gsm8k · gsm8k-2026-11-24" in the Prefect UI."""
    from prefect.runtime import flow_run

    params = flow_run.parameters
    run = params.get("run_name") or "default name"
    return f"solve · {Path(params['problem_file']).stem} · {expand_run_name(run)}"


def _label(ctx: RunContext, chunk: list[WorkItem]) -> str:
    first = chunk[0].problem.label
    what = first if len(chunk) == 1 else f"{first} +{len(chunk) - 1}"
    return f"{ctx.problem_set} · {ctx.model} · {what}"
