"""Stage: check every candidate that has no verdict yet against the reference answer."""

from __future__ import annotations

import time
from collections.abc import Callable

from prefect import task
from prefect.cache_policies import NO_CACHE

from proofflow.storage.records import SampleRow, VerdictRow
from proofflow.tasks.context import RunContext, WorkItem, runtime, to_json
from proofflow.verifiers import Outcome, Verdict
from proofflow.verifiers import answer as answer_verifier

VERIFIER = "answer"


def judge_unjudged(
    ctx: RunContext, items: list[WorkItem], verifier: str, version: str,
    crash: tuple[str, str], judge: Callable[[WorkItem, SampleRow], Verdict],
) -> list[WorkItem]:
    """Give every sample that has no `verifier` verdict yet one, and store it. A judge
    that raises yields an ERROR verdict with `crash` = (reason, feedback): never a pass,
    never a crash of the stage."""
    rt = runtime(ctx)
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
                    reason=crash[0], feedback=crash[1],
                    details={"exception": f"{type(exc).__name__}: {exc}"},
                    duration_s=time.perf_counter() - started,
                )
            row = verdict_row(ctx, item, sample.sample_id, verdict)
            rt.writer.put(row)
            item.state.verdicts[(sample.sample_id, verifier)] = row
    return items


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
    solve = ctx.settings.solve

    def judge(item: WorkItem, sample: SampleRow) -> Verdict:
        text = candidate_text(ctx, item, sample.sample_id, sample.completion or "")
        return answer_verifier.check_answer(text, item.problem.reference_answer,
                                            timeout_s=solve.verify_timeout_s,
                                            allow_last_number=solve.allow_last_number)

    return judge_unjudged(ctx, items, VERIFIER, answer_verifier.VERSION,
                          ("checker_error", "The checker failed on this answer."), judge)


@task(name="verify", task_run_name="verify · {label}", cache_policy=NO_CACHE)
def verify(ctx: RunContext, items: list[WorkItem], label: str) -> list[WorkItem]:
    return verify_answers(ctx, items)
