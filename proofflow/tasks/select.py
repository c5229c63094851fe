"""Stage: pick one final answer per problem and record the problem as done."""

from __future__ import annotations

from collections import Counter

from prefect import task
from prefect.cache_policies import NO_CACHE

from proofflow.storage.records import ResultRow
from proofflow.tasks.context import RunContext, WorkItem, runtime
from proofflow.tasks.verify import VERIFIER
from proofflow.verifiers import answer as answer_verifier


def majority_vote(item: WorkItem) -> tuple[str | None, str | None]:
    """Most frequent normalized answer over all candidates (repairs included);
    ties go to the answer seen first. Returns (answer, id of its first sample)."""
    votes: Counter[str] = Counter()
    first: dict[str, tuple[str, str]] = {}
    for sample in item.samples():
        verdict = item.verdict(sample.sample_id, VERIFIER)
        if verdict is None or not verdict.answer:
            continue
        key = answer_verifier.normalize_answer(verdict.answer)
        votes[key] += 1
        first.setdefault(key, (verdict.answer, sample.sample_id))
    if not votes:
        return None, None
    best = max(votes, key=lambda k: (votes[k], -list(first).index(k)))
    return first[best]


def select_answers(ctx: RunContext, items: list[WorkItem]) -> list[ResultRow]:
    rt = runtime(ctx)
    results = []
    for item in items:
        answer, chosen = majority_vote(item)
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
