"""Stage: check every candidate that has no verdict yet against the reference answer."""

from __future__ import annotations

import time
from collections.abc import Callable

from prefect import task
from prefect.cache_policies import NO_CACHE

from proofflow.storage.records import SampleRow, VerdictRow
from proofflow.tasks.context import RunContext, StageOutput, WorkItem, passed, to_json
from proofflow.verifiers import Outcome, Verdict
from proofflow.verifiers import answer as answer_verifier
from proofflow.verifiers.verdict import ANSWER, PYTHON_EXEC

VERIFIER = ANSWER


def judge_unjudged(
    ctx: RunContext, items: list[WorkItem], verifier: str, version: str,
    judge: Callable[[WorkItem, SampleRow], Verdict], *, crash_reason: str, crash_feedback: str,
) -> StageOutput:
    """A `verifier` verdict for every sample that has none yet. A judge that raises
    yields an ERROR verdict (crash_reason, crash_feedback): never a pass, never a crash
    of the stage."""
    out = StageOutput()
    for item in items:
        for sample in item.samples():
            if item.verdict(sample.sample_id, verifier) is not None:
                continue
            started = time.perf_counter()
            try:
                verdict = judge(item, sample)
            except Exception as exc:
                verdict = Verdict(
                    verifier=verifier, verifier_version=version, outcome=Outcome.ERROR,
                    reason=crash_reason, feedback=crash_feedback,
                    details={"exception": f"{type(exc).__name__}: {exc}"},
                    duration_s=time.perf_counter() - started,
                )
            out.add(verdict_row(ctx, item, sample.sample_id, verdict))
    return out


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
    run = item.verdict(sample_id, PYTHON_EXEC)
    if run is None or not passed(run) or not run.answer:
        return ""  # no output: no answer, a fail verdict
    return "\\boxed{" + run.answer + "}"


def verify_answers(ctx: RunContext, items: list[WorkItem]) -> StageOutput:
    solve = ctx.settings.solve

    def judge(item: WorkItem, sample: SampleRow) -> Verdict:
        text = candidate_text(ctx, item, sample.sample_id, sample.completion or "")
        return answer_verifier.check_answer(text, item.answer_problem.reference_answer,
                                            timeout_s=solve.verify_timeout_s,
                                            allow_last_number=solve.allow_last_number)

    return judge_unjudged(ctx, items, VERIFIER, answer_verifier.VERSION, judge,
                          crash_reason="checker_error", crash_feedback="The checker failed on this answer.")


@task(name="verify", task_run_name="{label}", cache_policy=NO_CACHE)
def verify(ctx: RunContext, items: list[WorkItem], label: str) -> StageOutput:
    return verify_answers(ctx, items)
