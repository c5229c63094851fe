"""What a prove run is, resolved once before Prefect starts: settings, problems (validated,
for the chosen backend), the expanded run name and the identity. Free of Prefect on
purpose, like flows/solve_spec.py: a finished run is answered from the store without
it. The flow itself is flows/prove.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from proofflow.config import Settings, load_settings
from proofflow.flows.naming import expand_run_name, problem_set_name
from proofflow.flows.session import RunSpec
from proofflow.problems import example_path, load_formal_problems
from proofflow.storage.records import ProblemRow, Row, RunProblemRow
from proofflow.strategies.registry import strategy
from proofflow.tasks.context import ProofProblem, to_json
from proofflow.verifiers.registry import backend as backend_named

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
    chosen = strategy(settings.prove.strategy, "proof")
    return RunSpec("prove", str(problem_file), label, name, settings, problems,
                   run_identity(settings, problem_file), chosen.run_label,
                   lambda run_id: problem_rows(problems, run_id), chosen.candidate_stages)
