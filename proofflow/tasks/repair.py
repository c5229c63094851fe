"""Stage: send each failed candidate of the previous round back with the checker's
feedback. Each repair is a new sample whose parent is the sample it repairs."""

from __future__ import annotations

from typing import TYPE_CHECKING

from proofflow.storage.records import SampleRow, VerdictRow
from proofflow.strategies.registry import strategy
from proofflow.strategies.shared.repair_on import repair_verifier
from proofflow.tasks.context import RunContext, WorkItem, passed
from proofflow.tasks.sampling import Plan, children_of
from proofflow.verifiers.verdict import PYTHON_EXEC, SELF_VERIFY

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


def plan_repair(ctx: RunContext, items: list[WorkItem], round_: int) -> list[Plan]:
    solve = ctx.settings.solve
    # Whose verdict decides: the reference check (oracle feedback) or, for csv, the
    # sample's own check; for pot a program that crashed is repaired like a wrong one.
    verifier = repair_verifier(ctx.settings)
    chosen = strategy(solve.strategy, "answer")  # its prompts/repair.txt
    plans: list[Plan] = []
    for item in items:
        failed = _to_repair(ctx.settings, item, verifier, round_)
        if not failed or over_budget(ctx.settings, item, round_):
            continue

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


def _to_repair(settings: Settings, item: WorkItem, verifier: str,
               round_: int) -> dict[str, tuple[SampleRow, VerdictRow]]:
    """The samples of round `round_ - 1` that round `round_` repairs (their failing
    verdict beside them): none once the problem is solved, unless repair_after_pass."""
    if not settings.solve.repair_after_pass and _solved_before(item, verifier, round_):
        return {}
    failed: dict[str, tuple[SampleRow, VerdictRow]] = {}
    for parent in item.samples(round_=round_ - 1):
        verdict = item.verdict(parent.sample_id, verifier)
        if verdict is not None and not passed(verdict):
            failed[parent.sample_id] = (parent, verdict)
    return failed


def tokens_before(item: WorkItem, round_: int) -> int:
    """Prompt + completion tokens (the thinking is part of the completion) of the
    problem's samples of the rounds before `round_`. Only earlier rounds: a run killed in
    the middle of round `round_` has some of its repairs stored, and a clean run decided
    the whole round before any of them existed, so the resumed one must decide the same."""
    return sum((s.prompt_tokens or 0) + (s.completion_tokens or 0)
               for s in item.state.samples.values() if s.round < round_)


def over_budget(settings: Settings, item: WorkItem, round_: int) -> bool:
    """`[solve] max_tokens_per_problem` is spent before round `round_`: it is not asked."""
    budget = settings.solve.max_tokens_per_problem
    return budget is not None and tokens_before(item, round_) >= budget


def stopped_by_budget(settings: Settings, item: WorkItem) -> bool:
    """Whether the token budget stopped a repair round the problem would otherwise have
    had (its result says so: results.stopped_by). From the stored rows alone, like the
    planning, so a resumed run records the same."""
    if settings.solve.max_tokens_per_problem is None:
        return False
    verifier = repair_verifier(settings)
    for round_ in range(1, settings.solve.repair_rounds + 1):
        if not _to_repair(settings, item, verifier, round_):
            return False
        if over_budget(settings, item, round_):
            return True
    return False


def _solved_before(item: WorkItem, verifier: str, round_: int) -> bool:
    """Solved by a sample of an earlier round. Not `item.solved`: a run killed in the
    middle of this round resumes with some of its repairs stored, and one of them may
    pass; a clean run planned the whole round before any of them was checked, so the
    resumed one must still ask the rest (same rows as a clean run)."""
    return any(passed(item.verdict(s.sample_id, verifier)) for s in item.samples() if s.round < round_)
