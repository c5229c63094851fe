"""Stage: run the model's code in the sandbox (program-of-thought and code-based
self-verification strategies). Model output is only ever run inside the sandbox."""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE

from proofflow.tasks.context import RunContext, StageOutput, WorkItem
from proofflow.tasks.verify import judge_unjudged
from proofflow.verifiers import Outcome, Verdict
from proofflow.verifiers import sandbox as python_exec
from proofflow.verifiers.sandbox.code_blocks import last_code_block
from proofflow.verifiers.verdict import PYTHON_EXEC, SELF_VERIFY

POT_VERIFIER = PYTHON_EXEC
CSV_VERIFIER = SELF_VERIFY


def verifier_for(strategy: str) -> str:
    return CSV_VERIFIER if strategy == "csv" else POT_VERIFIER


def _no_code(verifier: str, version: str) -> Verdict:
    return Verdict(
        verifier=verifier, verifier_version=version, outcome=Outcome.FAIL, reason="no_code",
        feedback="No ```python code block was found in the answer.",
    )


def run_program(code: str | None, timeout_s: float) -> Verdict:
    """Program of thought: the program's last printed line is its answer."""
    if code is None:
        return _no_code(POT_VERIFIER, python_exec.VERSION)
    result = python_exec.default_sandbox().run(code, timeout_s=timeout_s)
    verdict = python_exec.exec_verdict(result, verifier=POT_VERIFIER)
    last = next((line.strip() for line in reversed(result.stdout.splitlines()) if line.strip()), None)
    return Verdict(**{**verdict.__dict__, "answer": last[:500] if last else None})


def run_self_check(code: str | None, timeout_s: float) -> Verdict:
    if code is None:
        return _no_code(CSV_VERIFIER, python_exec.SELF_VERIFY_VERSION)
    return python_exec.self_verify(code, timeout_s=timeout_s)


def execute_code(ctx: RunContext, items: list[WorkItem]) -> StageOutput:
    solve = ctx.settings.solve
    verifier = verifier_for(solve.strategy)
    run = run_self_check if verifier == CSV_VERIFIER else run_program
    # A sandbox failure is an ERROR verdict ("sandbox_error"), never a pass.
    return judge_unjudged(
        ctx, items, verifier, "sandbox",
        lambda item, sample: run(last_code_block(sample.completion or ""), solve.exec_timeout_s),
        crash_reason="sandbox_error", crash_feedback="The code could not be run.",
    )


@task(name="execute", task_run_name="{label}", cache_policy=NO_CACHE)
def execute(ctx: RunContext, items: list[WorkItem], label: str) -> StageOutput:
    return execute_code(ctx, items)
