"""Stage: send each failed candidate of the previous round back with the checker's
feedback. Each repair is a new sample whose parent is the sample it repairs."""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE

from proofflow.keys import sample_id
from proofflow.storage.records import VerdictRow
from proofflow.tasks.context import RunContext, WorkItem, render_prompt
from proofflow.tasks.sampling import Plan, request_samples

STAGE = "repair"
PROMPTS = {"generate-verify-repair": "repair", "pot": "repair_pot", "csv": "repair_csv"}
MAX_ATTEMPT_CHARS = 4000  # keep the repair prompt inside small context windows


def _clip(text: str) -> str:
    if len(text) <= MAX_ATTEMPT_CHARS:
        return text
    return "[... earlier part cut ...]\n" + text[-MAX_ATTEMPT_CHARS:]


def _feedback(item: WorkItem, sample_id: str, decisive: VerdictRow) -> str:
    """What the model is told: the sandbox's account when its code failed to run (the
    traceback says more than "wrong answer"), else the deciding verdict's feedback."""
    for code_verifier in ("python_exec", "self_verify"):
        run = item.verdict(sample_id, code_verifier)
        if run is not None and run.outcome != "pass" and run.feedback and run is not decisive:
            return run.feedback
    return decisive.feedback or f"the answer was judged {decisive.outcome}"


def repair_failures(ctx: RunContext, items: list[WorkItem], round_: int) -> list[WorkItem]:
    solve = ctx.settings.solve
    # Whose verdict decides: the reference check (oracle feedback) or, for csv, the
    # sample's own check; for pot a program that crashed is repaired like a wrong one.
    verifier = solve.repair_verifier
    plans = []
    for item in items:
        if item.solved(verifier) and not solve.repair_after_pass:
            continue
        for parent in item.samples(round_=round_ - 1):
            verdict = item.verdict(parent.sample_id, verifier)
            if verdict is None or verdict.outcome == "pass":
                continue
            sid = sample_id(ctx.run_id, item.problem.id, STAGE, parent.sample_id, 0)
            if sid in item.state.samples:
                continue
            prompt = render_prompt(
                PROMPTS[solve.strategy], problem=item.problem.statement,
                attempt=_clip(parent.completion or "(empty answer)"),
                feedback=_feedback(item, parent.sample_id, verdict),
            )
            plans.append(Plan(item, prompt, STAGE, [sid], [0], parent.sample_id, round_))
    request_samples(ctx, plans)
    return items


@task(name="repair", task_run_name="repair {round_} · {label}", cache_policy=NO_CACHE)
def repair(ctx: RunContext, items: list[WorkItem], round_: int, label: str) -> list[WorkItem]:
    return repair_failures(ctx, items, round_)
