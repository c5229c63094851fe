"""The prove flow: a registered proof strategy's chain per problem (whole: generate →
check → repair → APOLLO repair; dsp: draft → sketch → check → prove holes).

Orchestration only: which problems run, how many at once. The order of stages is the
strategy's (proofflow/strategies/), looked up by name; the stages are in proofflow/tasks/,
the checker runtime in tasks/formal_runtime.py. The flow holds the verdict cache (loaded
once, grown from what check tasks return) and hands it to the chains.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from prefect import flow, get_run_logger

from proofflow.config import Settings
from proofflow.flows.chains import Chain, ModelCalls, Names, drive
from proofflow.flows.prove_spec import (  # what a run is, resolved before Prefect starts
    BUNDLED,
    ProveSetupError,
    default_run_name,
    load_proof_problems,
    prepare_prove,
    problem_rows,
    resolve_problem_file,
    run_identity,
)
from proofflow.flows.runners import runner_from_environment, task_runner_for
from proofflow.flows.session import RunConfigMismatch, RunSession, RunSpec
from proofflow.storage.check_cache import CheckCacheRow, load_all
from proofflow.storage.records import Row
from proofflow.strategies.registry import ChainEnv, strategy
from proofflow.tasks.context import ProofProblem, RunContext, WorkItem
from proofflow.tasks.formal_runtime import KnownChecks

__all__ = ["BUNDLED", "ProveSetupError", "RunConfigMismatch", "default_run_name", "load_proof_problems",
           "prepare_prove", "problem_rows", "prove_flow", "resolve_problem_file", "run_identity", "run_prove"]

# --------------------------------------------------------------------------- the pipeline

def prove_chain(ctx: RunContext, item: WorkItem, known: KnownChecks, persist: Any) -> Chain:
    """The run's strategy's stages for one problem (strategies/<name>/)."""
    env = ChainEnv(names=Names(ctx, [item]), persist=persist, known=known)
    return strategy(ctx.settings.prove.strategy, "proof").chain(ctx, [item], env)


def execute_prove(spec: RunSpec) -> dict[str, Any]:
    """Run (or resume) a resolved prove run in the current flow."""
    from proofflow.tasks import resources
    from proofflow.tasks.check_environment import check_environment

    logger = get_run_logger()
    settings = spec.settings
    try:
        # Before the run starts, where its checks run (tasks/check_environment.py): a
        # checker that cannot start, or that cannot elaborate the problems' headers, fails
        # nothing and asks no model.
        env = check_environment.submit(
            settings.prove, [p.formal for p in spec.problems if isinstance(p, ProofProblem)]).result()
        if env.problem is not None:
            raise ProveSetupError(env.problem)
        with RunSession(spec, counted="proved") as session:
            ctx = RunContext(session.run_id, spec.name, spec.problem_set, settings)
            known = KnownChecks(load_all(session.store, env.checker))

            def remember(rows: Sequence[Row]) -> None:  # later checks reuse what earlier ones found
                for row in rows:
                    if isinstance(row, CheckCacheRow):
                        known.add(row)

            session.observers.append(remember)
            session.figures.update(checks_run=0, cache_hits=0, cache_misses=0)
            todo = session.todo
            logger.info("run %s: %d problems, %d already done, %d to do",
                        spec.name, session.total, session.total - len(todo), len(todo))
            drive(session, (prove_chain(ctx, item, known, session.persist) for item in todo),
                  settings.prove.problems_in_flight, ModelCalls.of(settings))
    finally:
        resources.close_all()  # only after every task has returned (drive settles them)
    logger.info("run %s: %s", spec.name, {k: session.figures.get(k) for k in ("checks_run", "cache_hits")})
    return session.summary


@flow(name="prove", flow_run_name="prove · {problem_file}", log_prints=True,
      persist_result=False, task_runner=runner_from_environment(threads=8))
def prove_flow(problem_file: str, run_name: str | None = None, config_file: str | None = None,
               overrides: dict[str, Any] | None = None, problem_set: str | None = None,
               spec: Any = None) -> dict[str, Any]:
    """Run (or resume) one prove run. `spec` is the run already resolved by the CLI
    (then the other parameters only label the flow run)."""
    if not isinstance(spec, RunSpec):
        spec = prepare_prove(problem_file, run_name, config_file, overrides, problem_set=problem_set)
    return execute_prove(spec)


def task_threads(settings: Settings) -> int:
    """One checking task per chain in flight, plus the model requests of their stages."""
    p, e = settings.prove, settings.endpoint
    requests = p.problems_in_flight * max(1, p.samples)
    return p.problems_in_flight + max(1, min(requests, e.max_concurrency * len(e.base_urls)))


def run_prepared(spec: RunSpec) -> dict[str, Any]:
    """Run a resolved prove run with the task runner sized from its settings."""
    configured = prove_flow.with_options(
        task_runner=task_runner_for(spec.settings, task_threads(spec.settings)),
        flow_run_name=spec.flow_run_name)
    return configured(problem_file=spec.problem_file, run_name=spec.name, problem_set=spec.problem_set,
                      spec=spec)


def run_prove(problem_file: str, run_name: str | None = None, config_file: str | None = None,
              overrides: dict[str, Any] | None = None, problem_set: str | None = None) -> dict[str, Any]:
    """Entry point for tests and scripts: resolve the run once, then run it."""
    return run_prepared(prepare_prove(problem_file, run_name, config_file, overrides, problem_set=problem_set))
