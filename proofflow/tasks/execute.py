"""Stage: run the model's code in the sandbox (program-of-thought and code-based
self-verification strategies). Model output is only ever run inside the sandbox."""

from __future__ import annotations

import time

from prefect import task
from prefect.cache_policies import NO_CACHE

from proofflow.tasks.context import RunContext, WorkItem, runtime
from proofflow.tasks.verify import verdict_row
from proofflow.verifiers import Outcome, Verdict
from proofflow.verifiers import python_exec
from proofflow.verifiers.code_blocks import last_code_block

POT_VERIFIER = "python_exec"
CSV_VERIFIER = "self_verify"


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


def execute_code(ctx: RunContext, items: list[WorkItem]) -> list[WorkItem]:
    rt = runtime(ctx)
    solve = ctx.settings.solve
    verifier = verifier_for(solve.strategy)
    run = run_self_check if verifier == CSV_VERIFIER else run_program
    for item in items:
        for sample in item.samples():
            if item.verdict(sample.sample_id, verifier) is not None:
                continue
            started = time.perf_counter()
            try:
                verdict = run(last_code_block(sample.completion or ""), solve.exec_timeout_s)
            except Exception as exc:  # the sandbox failing is an ERROR verdict, never a pass
                verdict = Verdict(
                    verifier=verifier, verifier_version="sandbox", outcome=Outcome.ERROR,
                    reason="sandbox_error", feedback="The code could not be run.",
                    details={"exception": f"{type(exc).__name__}: {exc}"},
                    duration_s=time.perf_counter() - started,
                )
            row = verdict_row(ctx, item, sample.sample_id, verdict)
            rt.writer.put(row)
            item.state.verdicts[(sample.sample_id, verifier)] = row
    return items


@task(name="execute", task_run_name="execute · {label}", cache_policy=NO_CACHE)
def execute(ctx: RunContext, items: list[WorkItem], label: str) -> list[WorkItem]:
    return execute_code(ctx, items)
