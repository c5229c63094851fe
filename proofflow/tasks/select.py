"""Stage: pick one final answer per problem and record the problem as done."""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE

from proofflow.agents.episode import TOKEN_BUDGET
from proofflow.config import VoteWeights
from proofflow.storage.records import ResultRow
from proofflow.tasks.context import RunContext, StageOutput, WorkItem, passed
from proofflow.tasks.repair import stopped_by_budget
from proofflow.tasks.verify import VERIFIER
from proofflow.verifiers import Outcome
from proofflow.verifiers import answer as answer_verifier
from proofflow.verifiers.verdict import SELF_VERIFY


def vote_weight(item: WorkItem, sample_id: str, weights: VoteWeights | None) -> float:
    """1 for a plain majority vote; by the sample's self-verification for a weighted one."""
    if weights is None:
        return 1.0
    check = item.verdict(sample_id, SELF_VERIFY)
    if check is None or check.outcome in (Outcome.ERROR.value, Outcome.TIMEOUT.value):
        return weights.unverified
    return weights.verified if passed(check) else weights.refuted


def majority_vote(item: WorkItem, weights: VoteWeights | None = None) -> tuple[str | None, str | None]:
    """Most (weighted) votes over normalized answers of all candidates (repairs
    included); ties go to the answer seen first. Returns (answer, id of its first sample)."""
    votes: dict[str, float] = {}
    first: dict[str, tuple[str, str]] = {}
    for sample in item.samples():
        verdict = item.verdict(sample.sample_id, VERIFIER)
        if verdict is None or not verdict.answer:
            continue
        key = answer_verifier.normalize_answer(verdict.answer)
        votes[key] = votes.get(key, 0.0) + vote_weight(item, sample.sample_id, weights)
        first.setdefault(key, (verdict.answer, sample.sample_id))
    if not votes:
        return None, None
    best = max(votes, key=lambda k: (votes[k], -list(first).index(k)))
    return first[best]


def stopped_by(ctx: RunContext, item: WorkItem) -> str | None:
    """token_budget when the problem's token budget stopped work it would have had: a
    repair round of gvr / pot / csv, or an agent episode (tir), else None."""
    if any(e.ended == TOKEN_BUDGET for e in item.state.episodes.values()):
        return TOKEN_BUDGET
    return TOKEN_BUDGET if stopped_by_budget(ctx.settings, item) else None


def select_answers(ctx: RunContext, items: list[WorkItem]) -> StageOutput:
    solve = ctx.settings.solve
    out = StageOutput()
    for item in items:
        weights = solve.vote_weights if solve.selection == "weighted" else None
        answer, chosen = majority_vote(item, weights)
        chosen_verdict = item.verdict(chosen, VERIFIER) if chosen else None
        verdicts = [item.verdict(s.sample_id, VERIFIER) for s in item.samples()]
        n_passed = sum(1 for v in verdicts if passed(v))
        out.add(ResultRow(
            run_id=ctx.run_id, problem_id=item.problem.id, selection=solve.selection,
            selected_answer=answer, selected_sample_id=chosen, correct=passed(chosen_verdict),
            solved=n_passed > 0, n_samples=len(verdicts), n_passed=n_passed,
            stopped_by=stopped_by(ctx, item),
        ))
    return out


@task(name="select", task_run_name="{label}", cache_policy=NO_CACHE)
def select(ctx: RunContext, items: list[WorkItem], label: str) -> StageOutput:
    return select_answers(ctx, items)
