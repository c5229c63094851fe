"""What a solve run is, resolved once before Prefect starts: settings, problems (validated),
the expanded run name and the identity. Free of Prefect on purpose: the CLI resolves the
run here and, when the stored run is already finished (flows/session.py
`finished_summary`), answers from the store without importing Prefect at all. The flow
itself is flows/solve.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from proofflow.config import Settings, load_settings
from proofflow.flows.naming import expand_run_name, problem_set_name
from proofflow.flows.session import RunSpec
from proofflow.problems import Problem, load_problems
from proofflow.storage.records import ProblemRow, Row, RunProblemRow
from proofflow.strategies.registry import strategy
from proofflow.tasks.context import to_json


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
    chosen = strategy(settings.solve.strategy, "answer")
    return RunSpec("solve", str(problem_file), label, name, settings, problems,
                   run_identity(settings, problem_file), chosen.run_label,
                   lambda run_id: problem_rows(problems, run_id), chosen.candidate_stages)
