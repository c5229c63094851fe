"""Stage: send each failed candidate of the previous round back with the checker's
feedback. Each repair is a new sample whose parent is the sample it repairs."""

from __future__ import annotations

from typing import TYPE_CHECKING

from proofflow.storage.records import SampleRow, VerdictRow
from proofflow.strategies.registry import strategy
from proofflow.tasks.context import RunContext, WorkItem, passed
from proofflow.tasks.sampling import Plan, children_of
from proofflow.verifiers.verdict import ANSWER, PYTHON_EXEC, SELF_VERIFY

if TYPE_CHECKING:
    from proofflow.config import Settings

STAGE = "repair"
MAX_ATTEMPT_CHARS = 4000  # keep the repair prompt inside small context windows


def _clip(text: str) -> str:
    if len(text) <= MAX_ATTEMPT_CHARS:
        return text
    return "[... earlier part cut ...]\n" + text[-MAX_ATTEMPT_CHARS:]


def _feedback(item: WorkItem, sample_id: str, decisive: VerdictRow) -> str:
    """What the model is told: the sandbox's account when its code failed to run (the
    traceback says more than "wrong answer"), else the deciding verdict's feedback."""
    for code_verifier in (PYTHON_EXEC, SELF_VERIFY):
        run = item.verdict(sample_id, code_verifier)
        if run is not None and not passed(run) and run.feedback and run is not decisive:
            return run.feedback
    return decisive.feedback or f"the answer was judged {decisive.outcome}"


def repair_verifier(settings: Settings) -> str:
    """Whose verdict sends a sample to repair: `[solve] repair_on` when set, else the
    strategy's own choice (the reference check; csv: the sample's own check)."""
    if settings.solve.repair_on is not None:
        return settings.solve.repair_on
    return str(getattr(strategy(settings.solve.strategy, "answer"), "repair_verifier", ANSWER))


def plan_repair(ctx: RunContext, items: list[WorkItem], round_: int) -> list[Plan]:
    solve = ctx.settings.solve
    # Whose verdict decides: the reference check (oracle feedback) or, for csv, the
    # sample's own check; for pot a program that crashed is repaired like a wrong one.
    verifier = repair_verifier(ctx.settings)
    chosen = strategy(solve.strategy, "answer")  # its prompts/repair.txt
    plans: list[Plan] = []
    for item in items:
        if not solve.repair_after_pass and _solved_before(item, verifier, round_):
            continue
        failed: dict[str, tuple[SampleRow, VerdictRow]] = {}
        for parent in item.samples(round_=round_ - 1):
            verdict = item.verdict(parent.sample_id, verifier)
            if verdict is not None and not passed(verdict):
                failed[parent.sample_id] = (parent, verdict)

        def prompt(parent_id: str, item: WorkItem = item,
                   failed: dict[str, tuple[SampleRow, VerdictRow]] = failed) -> str:
            parent, verdict = failed[parent_id]
            return chosen.prompt(
                "repair", problem=item.answer_problem.statement,
                attempt=_clip(parent.completion or "(empty answer)"),
                feedback=_feedback(item, parent_id, verdict),
            )

        plans += children_of(ctx, item, STAGE, failed, prompt, round_)
    return plans


def _solved_before(item: WorkItem, verifier: str, round_: int) -> bool:
    """Solved by a sample of an earlier round. Not `item.solved`: a run killed in the
    middle of this round resumes with some of its repairs stored, and one of them may
    pass; a clean run planned the whole round before any of them was checked, so the
    resumed one must still ask the rest (same rows as a clean run)."""
    return any(passed(item.verdict(s.sample_id, verifier)) for s in item.samples() if s.round < round_)

