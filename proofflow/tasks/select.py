"""Stage: pick one final answer per problem and record the problem as done."""

from __future__ import annotations

from collections import Counter

from prefect import task
from prefect.cache_policies import NO_CACHE

from proofflow.config import VoteWeights
from proofflow.storage.records import ResultRow
from proofflow.tasks.context import RunContext, WorkItem, runtime
from proofflow.tasks.verify import VERIFIER
from proofflow.verifiers import answer as answer_verifier


def vote_weight(item: WorkItem, sample_id: str, weights: VoteWeights | None) -> float:
    """1 for a plain majority vote; by the sample's self-verification for a weighted one."""
    if weights is None:
        return 1.0
    check = item.verdict(sample_id, "self_verify")
    if check is None or check.outcome in ("error", "timeout"):
        return weights.unverified
    return weights.verified if check.outcome == "pass" else weights.refuted


def majority_vote(item: WorkItem, weights: VoteWeights | None = None) -> tuple[str | None, str | None]:
    """Most (weighted) votes over normalized answers of all candidates (repairs
    included); ties go to the answer seen first. Returns (answer, id of its first sample)."""
    votes: Counter[str] = Counter()
    first: dict[str, tuple[str, str]] = {}
    for sample in item.samples():
        verdict = item.verdict(sample.sample_id, VERIFIER)
        if verdict is None or not verdict.answer:
            continue
        key = answer_verifier.normalize_answer(verdict.answer)
        votes[key] += vote_weight(item, sample.sample_id, weights)  # type: ignore[assignment]
        first.setdefault(key, (verdict.answer, sample.sample_id))
    if not votes:
        return None, None
    best = max(votes, key=lambda k: (votes[k], -list(first).index(k)))
    return first[best]


def select_answers(ctx: RunContext, items: list[WorkItem]) -> list[ResultRow]:
    rt = runtime(ctx)
    solve = ctx.settings.solve
    results = []
    for item in items:
        weights = solve.vote_weights if solve.selection == "weighted" else None
        answer, chosen = majority_vote(item, weights)
        chosen_verdict = item.verdict(chosen, VERIFIER) if chosen else None
        verdicts = [item.verdict(s.sample_id, VERIFIER) for s in item.samples()]
        n_passed = sum(1 for v in verdicts if v is not None and v.outcome == "pass")
        result = ResultRow(
            run_id=ctx.run_id, problem_id=item.problem.id, selection=ctx.settings.solve.selection,
            selected_answer=answer, selected_sample_id=chosen,
            correct=(chosen_verdict.outcome == "pass") if chosen_verdict else False,
            solved=n_passed > 0, n_samples=len(verdicts), n_passed=n_passed,
        )
        rt.writer.put(result)
        item.state.result = result
        results.append(result)
    return results


@task(name="select", task_run_name="select · {label}", cache_policy=NO_CACHE)
def select(ctx: RunContext, items: list[WorkItem], label: str) -> list[ResultRow]:
    return select_answers(ctx, items)
