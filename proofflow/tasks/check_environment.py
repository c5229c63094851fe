"""Stage task: before a prove run's first model call, can its checker start, and can it
elaborate every problem's header (tasks/environment_check.py says why)?

A task on the flow's task runner, not a call in the flow's process, because the answer is
about where the checks will run: with `--runner dask` that is a worker, whose checker the
header check then leaves warm for the run. Run in the flow's process, it started a checker
there that no check used (on the wasm Lean ~45 s and ~3 GB before the first request, on a
flow machine that may have no Lean at all). With threads it is the same process either way.

It returns what it found instead of raising, so a run stopped here is one clear line from
the flow, not a failed task run with a traceback in the logs.
"""

from __future__ import annotations

from dataclasses import dataclass

from prefect import task
from prefect.cache_policies import NO_CACHE

from proofflow.config import ProveConfig
from proofflow.verifiers.formal import FormalProblem


@dataclass(frozen=True)
class Environment:
    checker: str            # "<name> <version>": the key of the run's verdict cache
    problem: str | None     # why the run cannot start here (one line); None: it can


@task(name="check-environment", task_run_name="check environment · {prove.backend}", cache_policy=NO_CACHE)
def check_environment(prove: ProveConfig, problems: list[FormalProblem]) -> Environment:
    from proofflow.tasks import resources
    from proofflow.tasks.environment_check import require_headers

    try:
        checker = resources.formal_checker(prove)
    except RuntimeError as exc:  # CoqNotFound, "Lean backend unavailable: ..."
        return Environment("", str(exc))
    label = f"{checker.name} {checker.version}"
    try:
        require_headers(checker, problems, prove.backend)
    except RuntimeError as exc:  # HeaderEnvironmentError, a toolchain that fails to start
        return Environment(label, str(exc))
    return Environment(label, None)
