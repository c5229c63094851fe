"""The prove flow: a registered proof strategy's chain per problem (whole: generate →
check → repair → APOLLO repair; dsp: draft → sketch → check → prove holes).

Orchestration only: which problems run, how many at once. The order of stages is the
strategy's (proofflow/strategies/), looked up by name; the stages are in proofflow/tasks/,
the checker runtime in tasks/formal_runtime.py. The flow holds the verdict cache (loaded
once, grown from what check tasks return) and hands it to the chains.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger

from proofflow.config import Settings, load_settings
from proofflow.flows.chains import Chain, Names, drive
from proofflow.flows.naming import expand_run_name, problem_set_name
from proofflow.flows.runners import runner_from_environment, task_runner_for
from proofflow.flows.session import RunConfigMismatch, RunSession, RunSpec
from proofflow.problems import example_path, load_formal_problems
from proofflow.storage.check_cache import CheckCacheRow, load_all
from proofflow.storage.records import ProblemRow, Row, RunProblemRow
from proofflow.strategies.registry import ChainEnv, strategy
from proofflow.tasks.context import ProofProblem, RunContext, WorkItem, to_json
from proofflow.tasks.formal_runtime import KnownChecks
from proofflow.verifiers.registry import backend as backend_named

__all__ = ["ProveSetupError", "RunConfigMismatch", "default_run_name", "load_proof_problems", "prove_flow", "run_prove"]

BUNDLED = {"coq-examples": "coq_examples", "lean-examples": "lean_examples"}


class ProveSetupError(ValueError):
    """The user's setup, not a bug: a problem file for another backend, or a checker
    that cannot start here (no coqtop, no Lean toolchain)."""

    resumable = False  # raised before the run stores anything: the CLI offers no resume line


def resolve_problem_file(problem_file: str) -> str:
    """`coq-examples` / `lean-examples` name the bundled sets; anything else is a path."""
    return str(example_path(BUNDLED[problem_file])) if problem_file in BUNDLED else problem_file


def load_proof_problems(problem_file: str, settings: Settings) -> list[ProofProblem]:
    """miniF2F (DeepSeek / yangky11), plain or Coq-example JSONL; the backend must match."""
    problems = load_formal_problems(resolve_problem_file(problem_file), limit=settings.prove.limit,
                                    dedupe=settings.problems.dedupe,
                                    max_line_bytes=settings.problems.max_line_bytes)
    want = backend_named(settings.prove.backend).name  # `kimina` checks `lean` problems
    wrong = [p.name for p in problems if p.backend != want]
    if wrong:
        raise ProveSetupError(f"{problem_file}: {len(wrong)} problem(s) are not {want} problems "
                         f"(e.g. {wrong[0]}); choose --backend to match the file")
    return [ProofProblem.of(p) for p in problems]


def run_identity(settings: Settings, problem_file: str) -> dict[str, Any]:
    """The settings that change what a run's samples mean; resuming with others is refused."""
    return {
        "backend": settings.prove.backend, "problem_file": Path(problem_file).name,
        "model": settings.endpoint.model, "api": settings.endpoint.api,
        "sampling": settings.sampling.model_dump(),
        # the strategy's own: its name, samples, rounds, hole budget, ...
        **strategy(settings.prove.strategy, "proof").identity_keys(settings),
    }


def default_run_name(problem_file: str, settings: Settings, problem_set: str | None = None) -> str:
    p = settings.prove
    return (f"{problem_set_name(problem_file, problem_set)}-{p.backend}-{p.strategy}-{settings.endpoint.model}"
            f"-n{p.samples}-r{p.repair_rounds}")


def problem_rows(problems: list[ProofProblem], run_id: str) -> list[Row]:
    rows: list[Row] = []
    for position, p in enumerate(problems):
        f = p.formal
        rows.append(ProblemRow(
            problem_id=p.id, source=f.source, source_id=p.source_id, split=f.split, kind="formal",
            statement=f.informal or None, formal_statement=f.statement, header=f.header,
            reference_answer=None, metadata=to_json({**f.metadata, "backend": f.backend, "name": f.name}),
        ))
        rows.append(RunProblemRow(run_id=run_id, problem_id=p.id, position=position, source_id=p.source_id,
                                  metadata=to_json({**f.metadata, "backend": f.backend, "name": f.name})))
    return rows


def prepare_prove(
    problem_file: str, run_name: str | None = None, config_file: str | None = None,
    overrides: dict[str, Any] | None = None, *, settings: Settings | None = None,
    problem_set: str | None = None,
) -> RunSpec:
    """Resolve a prove run once: settings, problems (validated), the expanded name."""
    settings = settings or load_settings(Path(config_file) if config_file else None, overrides)
    problems = load_proof_problems(problem_file, settings)
    label = problem_set_name(problem_file, problem_set)
    name = expand_run_name(run_name) if run_name else default_run_name(problem_file, settings, problem_set)
    return RunSpec("prove", str(problem_file), label, name, settings, problems,
                   run_identity(settings, problem_file), strategy(settings.prove.strategy, "proof").run_label,
                   lambda run_id: problem_rows(problems, run_id))


# --------------------------------------------------------------------------- the pipeline

def prove_chain(ctx: RunContext, item: WorkItem, known: KnownChecks, persist: Any) -> Chain:
    """The run's strategy's stages for one problem (strategies/<name>/)."""
    env = ChainEnv(names=Names(ctx, [item]), persist=persist, known=known)
    return strategy(ctx.settings.prove.strategy, "proof").chain(ctx, [item], env)


def execute_prove(spec: RunSpec) -> dict[str, Any]:
    """Run (or resume) a resolved prove run in the current flow."""
    from proofflow.tasks import resources
    from proofflow.tasks.environment_check import require_headers

    logger = get_run_logger()
    settings = spec.settings
    try:
        try:  # before the run starts: a checker that cannot start here fails nothing
            checker = resources.formal_checker(settings.prove)
            # ... nor one that cannot elaborate the problems' headers: no model call, no verdict
            require_headers(checker, [p.formal for p in spec.problems if isinstance(p, ProofProblem)],
                            settings.prove.backend)
        except RuntimeError as exc:  # CoqNotFound, "Lean backend unavailable: ...", a header
            raise ProveSetupError(str(exc)) from exc
        with RunSession(spec, counted="proved") as session:
            ctx = RunContext(session.run_id, spec.name, spec.problem_set, settings)
            known = KnownChecks(load_all(session.store, f"{checker.name} {checker.version}"))

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
                  settings.prove.problems_in_flight)
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
