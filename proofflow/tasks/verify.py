"""Stage: check every candidate that has no verdict yet against the reference answer."""

from __future__ import annotations

import time

from prefect import task
from prefect.cache_policies import NO_CACHE

from proofflow.storage.records import VerdictRow
from proofflow.tasks.context import RunContext, WorkItem, runtime, to_json
from proofflow.verifiers import Outcome, Verdict
from proofflow.verifiers import answer as answer_verifier

VERIFIER = "answer"


def _check(completion: str, reference: str, timeout_s: float, allow_last_number: bool) -> Verdict:
    started = time.perf_counter()
    try:
        return answer_verifier.check_answer(
            completion, reference, timeout_s=timeout_s, allow_last_number=allow_last_number
        )
    except Exception as exc:  # a checker bug is an ERROR verdict, never a pass or a crash
        return Verdict(
            verifier=VERIFIER, verifier_version=answer_verifier.VERSION, outcome=Outcome.ERROR,
            reason="checker_error", feedback="The checker failed on this answer.",
            details={"exception": f"{type(exc).__name__}: {exc}"},
            duration_s=time.perf_counter() - started,
        )


def verdict_row(ctx: RunContext, item: WorkItem, sample_id: str, verdict: Verdict) -> VerdictRow:
    return VerdictRow(
        sample_id=sample_id, verifier=verdict.verifier, verifier_version=verdict.verifier_version,
        run_id=ctx.run_id, problem_id=item.problem.id, outcome=verdict.outcome.value,
        reason=verdict.reason, answer=verdict.answer, feedback=verdict.feedback,
        details=to_json(verdict.details), duration_s=verdict.duration_s,
    )


def candidate_text(ctx: RunContext, item: WorkItem, sample_id: str, completion: str) -> str:
    """What the answer checker reads: the completion, or for program of thought the
    program's printed answer (boxed, so the checker takes it whole)."""
    if ctx.settings.solve.strategy != "pot":
        return completion
    run = item.verdict(sample_id, "python_exec")
    if run is None or run.outcome != "pass" or not run.answer:
        return ""  # no output: no answer, a fail verdict
    return "\\boxed{" + run.answer + "}"


def verify_answers(ctx: RunContext, items: list[WorkItem]) -> list[WorkItem]:
    rt = runtime(ctx)
    solve = ctx.settings.solve
    for item in items:
        for sample in item.samples():
            if item.verdict(sample.sample_id, VERIFIER) is not None:
                continue
            text = candidate_text(ctx, item, sample.sample_id, sample.completion or "")
            verdict = _check(text, item.problem.reference_answer,
                             solve.verify_timeout_s, solve.allow_last_number)
            row = verdict_row(ctx, item, sample.sample_id, verdict)
            rt.writer.put(row)
            item.state.verdicts[(sample.sample_id, VERIFIER)] = row
    return items


@task(name="verify", task_run_name="verify · {label}", cache_policy=NO_CACHE)
def verify(ctx: RunContext, items: list[WorkItem], label: str) -> list[WorkItem]:
    return verify_answers(ctx, items)
