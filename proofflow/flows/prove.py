"""The prove flows: whole-proof (generate → check → repair → APOLLO repair) and DSP+
(draft → sketch → check → prove holes), per problem.

Orchestration only: which stage runs after which, for which problems, what is skipped
because the database already has it. The stages are in proofflow/tasks/ (prove_generate,
check_proofs, formal_repair, draft, sketch, prove_holes, finalize); the checker and its
persisted verdict cache live in tasks/formal_context.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_progress_artifact, update_progress_artifact
from prefect.task_runners import ThreadPoolTaskRunner

from proofflow.config import Settings, load_settings
from proofflow.flows.progress import Progress, publish
from proofflow.flows.common import (
    RunConfigMismatch,
    artifact_key,
    expand_run_name,
    publish_summary,
    run_chains,
    start_run,
)
from proofflow.problems import example_path
from proofflow.problems.formal import load_formal_problems
from proofflow.storage.db import Store
from proofflow.storage.records import ProblemRow, RunProblemRow
from proofflow.tasks.check_proofs import check_proofs
from proofflow.tasks.context import (
    RunContext,
    WorkItem,
    close_runtime,
    open_runtime,
    to_json,
)
from proofflow.tasks.draft import draft
from proofflow.tasks.finalize import finalize
from proofflow.tasks.formal_context import (
    ProofProblem,
    close_prove_runtime,
    open_prove_runtime,
)
from proofflow.tasks.formal_repair import formal_repair
from proofflow.tasks.prove_generate import prove_generate
from proofflow.tasks.prove_holes import prove_holes
from proofflow.tasks.sketch import sketch

__all__ = ["RunConfigMismatch", "default_run_name", "load_proof_problems", "prove_flow", "run_prove"]

BUNDLED = {"coq-examples": "coq_examples"}


def resolve_problem_file(problem_file: str) -> str:
    """`coq-examples` names the bundled Coq set; anything else is a path."""
    return str(example_path(BUNDLED[problem_file])) if problem_file in BUNDLED else problem_file


def load_proof_problems(problem_file: str, settings: Settings) -> list[ProofProblem]:
    """miniF2F (DeepSeek / yangky11), plain or Coq-example JSONL; the backend must match."""
    problems = load_formal_problems(resolve_problem_file(problem_file), limit=settings.prove.limit)
    want = "coq" if settings.prove.backend == "coq" else "lean"
    wrong = [p.name for p in problems if p.backend != want]
    if wrong:
        raise ValueError(f"{problem_file}: {len(wrong)} problem(s) are not {want} problems "
                         f"(e.g. {wrong[0]}); choose --backend to match the file")
    return [ProofProblem.of(p) for p in problems]


def run_identity(settings: Settings, problem_file: str) -> dict[str, Any]:
    """The settings that change what a run's samples mean; resuming with others is refused."""
    p = settings.prove
    return {
        "strategy": p.strategy, "backend": p.backend, "problem_file": Path(problem_file).name,
        "model": settings.endpoint.model, "api": settings.endpoint.api,
        "sampling": settings.sampling.model_dump(), "samples": p.samples,
        "repair_rounds": p.repair_rounds, "repair_depth": p.repair_depth,
        "repair_candidates": p.repair_candidates, "automation": p.automation(),
        "hole_budget": p.hole_budget, "stop_on_first_complete": p.stop_on_first_complete,
        "use_informal_proof": p.use_informal_proof,
    }


def default_run_name(problem_file: str, settings: Settings) -> str:
    p = settings.prove
    return (f"{Path(problem_file).stem}-{p.backend}-{p.strategy}-{settings.endpoint.model}"
            f"-n{p.samples}-r{p.repair_rounds}")


def problem_rows(problems: list[ProofProblem], run_id: str) -> list:
    rows: list = []
    for position, p in enumerate(problems):
        f = p.formal
        rows.append(ProblemRow(
            problem_id=p.id, source=f.source, source_id=p.source_id, split=f.split, kind="formal",
            statement=f.informal or None, formal_statement=f.statement, header=f.header,
            reference_answer=None, metadata=to_json({**f.metadata, "backend": f.backend, "name": f.name}),
        ))
        rows.append(RunProblemRow(run_id=run_id, problem_id=p.id, position=position))
    return rows


def _chain(ctx: RunContext, item: WorkItem, label: str) -> list[Any]:
    """The stage futures of one problem, in order; the last one is finalize."""
    p = ctx.settings.prove
    items = [item]
    if p.strategy == "whole":
        chain = [prove_generate.submit(ctx, items, label)]
        chain.append(check_proofs.submit(ctx, chain[-1], label))
        for round_ in range(1, p.repair_rounds + 1):
            chain.append(formal_repair.submit(ctx, chain[-1], round_, label))
            chain.append(check_proofs.submit(ctx, chain[-1], label))
        if p.repair_depth > 0 and p.repair_candidates > 0:
            chain.append(prove_holes.submit(ctx, chain[-1], "repair", label))
    else:
        chain = [draft.submit(ctx, items, label)]
        chain.append(sketch.submit(ctx, chain[-1], label))
        chain.append(check_proofs.submit(ctx, chain[-1], label))
        chain.append(prove_holes.submit(ctx, chain[-1], "sketch", label))
    chain.append(finalize.submit(ctx, chain[-1], label))
    return chain


@flow(name="prove", flow_run_name="prove · {problem_file_name}", log_prints=True,
      persist_result=False, task_runner=ThreadPoolTaskRunner(max_workers=2))
def prove_flow(problem_file: str, run_name: str | None = None, config_file: str | None = None,
               overrides: dict[str, Any] | None = None, problem_file_name: str = "") -> dict[str, Any]:
    """Run (or resume) one prove run. `problem_file_name` only names the flow run."""
    logger = get_run_logger()
    settings = load_settings(Path(config_file) if config_file else None, overrides)
    problems = load_proof_problems(problem_file, settings)
    name = expand_run_name(run_name) if run_name else default_run_name(problem_file, settings)
    store = Store(settings.storage.db_path, lock_timeout_s=settings.storage.lock_timeout_s)
    run = start_run(store, name, f"prove-{settings.prove.strategy}", problem_file, settings,
                    run_identity(settings, problem_file))
    ctx = RunContext(run_id=run.run_id, run_name=name, problem_set=Path(problem_file).stem, settings=settings)

    state = store.load_run_state(run.run_id)
    todo = [WorkItem(p, state.problem(p.id)) for p in problems if not state.done(p.id)]  # type: ignore[arg-type]
    already = len(problems) - len(todo)
    solved = sum(1 for p in problems if state.done(p.id) and state.problems[p.id].result.solved)
    logger.info("run %s: %d problems, %d already done, %d to do", name, len(problems), already, len(todo))

    rt = open_runtime(ctx)
    status, figures = "failed", {}
    try:
        rt.writer.put(*problem_rows(problems, run.run_id))
        open_prove_runtime(ctx)
        progress_id = create_progress_artifact(
            progress=100.0 * already / len(problems), key=artifact_key("progress", name),
            description=f"{name}: problems done out of {len(problems)}")
        publish(Progress(name, already, len(problems), solved))
        done = already

        def finished(results: list[Any], chain: list[Any]) -> None:
            nonlocal done, solved
            for result in results:
                done += 1
                solved += int(result.solved)
                publish(Progress(name, done, len(problems), solved, result.problem_id))
            update_progress_artifact(
                progress_id, 100.0 * done / len(problems),
                description=f"{name}: {done}/{len(problems)} problems done, {solved} proved")

        run_chains(todo, settings.prove.problems_in_flight,
                   lambda item: _chain(ctx, item, f"{ctx.problem_set} · {ctx.model} · {item.problem.label}"),
                   finished)
        status = "completed"
    finally:
        figures = close_prove_runtime(ctx)
        close_runtime(ctx)  # flushes everything queued, also when a stage failed
        store.finish_run(run.run_id, status)

    summary = publish_summary(store, run.run_id, name)
    summary.update(figures)
    logger.info("run %s: %s", name, figures)
    return summary


def task_threads(settings: Settings) -> int:
    """Threads for a window of problems_in_flight chains, each stage of which may hold a
    thread while it waits on its upstream."""
    p = settings.prove
    stages = 3 + 2 * p.repair_rounds + 1 if p.strategy == "whole" else 5
    return p.problems_in_flight * stages


def run_prove(problem_file: str, run_name: str | None = None, config_file: str | None = None,
              overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Entry point for the CLI, tests and scripts: sizes the task runner from the settings."""
    settings = load_settings(Path(config_file) if config_file else None, overrides)
    load_proof_problems(problem_file, settings)  # fail on a bad file before Prefect starts
    name = run_name or default_run_name(problem_file, settings)
    configured = prove_flow.with_options(
        task_runner=ThreadPoolTaskRunner(max_workers=task_threads(settings)),
        flow_run_name=f"prove · {name}")
    return configured(problem_file=str(problem_file), run_name=name, config_file=config_file,
                      overrides=overrides, problem_file_name=Path(problem_file).stem)
