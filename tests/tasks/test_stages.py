"""The solve stages as pure functions, without Prefect: rows in, rows out, inputs untouched."""

from __future__ import annotations

from proofflow.config import load_settings
from proofflow.keys import sample_id
from proofflow.problems import Problem, example_path, load_problems
from proofflow.storage.records import CallRow, ResultRow, SampleRow, VerdictRow
from proofflow.tasks.context import RunContext, WorkItem
from proofflow.tasks.generate import plan_generate
from proofflow.tasks.repair import plan_repair
from proofflow.tasks.sampling import children_of, missing_indices, sample_request
from proofflow.tasks.select import select_answers
from proofflow.tasks.verify import judge_unjudged, verify_answers
from proofflow.testing.instant_server import InstantServer

RUN = "run-1"


def ctx(**overrides: object) -> RunContext:
    settings = load_settings(overrides={"endpoint.model": "instant", "solve.samples": 3, **overrides})
    return RunContext(RUN, "r", "examples", settings)


def problem() -> Problem:
    return load_problems(example_path())[0]  # "What is 2 + 3?" -> 5


def sample(item: WorkItem, idx: int, text: str, stage: str = "generate", parent: str | None = None,
           round_: int = 0) -> SampleRow:
    sid = sample_id(RUN, item.problem.id, stage, parent, idx)
    row = SampleRow(sid, RUN, item.problem.id, stage, parent, idx, round_, None, "m", None, None, None,
                    "p", text, "stop", 3, 4, True, 0.0, None)
    item.state.samples[sid] = row
    return row


def test_missing_indices_asks_only_what_is_not_stored() -> None:
    c, item = ctx(), WorkItem(problem())
    first = missing_indices(c, item, "generate", 3, lambda: "prompt")
    assert len(first) == 1 and first[0].indices == [0, 1, 2]
    assert first[0].ids == [sample_id(RUN, item.problem.id, "generate", None, i) for i in range(3)]
    sample(item, 1, "x")
    again = missing_indices(c, item, "generate", 3, lambda: "prompt")
    assert again[0].indices == [0, 2] and again[0].ids[0] == first[0].ids[0]
    sample(item, 0, "x")
    sample(item, 2, "x")
    assert missing_indices(c, item, "generate", 3, lambda: "never rendered") == []


def test_children_of_one_per_parent_skipping_parents_with_a_child() -> None:
    c, item = ctx(), WorkItem(problem())
    a, b = sample(item, 0, "a"), sample(item, 1, "b")
    plans = children_of(c, item, "repair", [a.sample_id, b.sample_id], lambda parent: f"fix {parent}", 1)
    assert [p.parent_id for p in plans] == [a.sample_id, b.sample_id]
    assert plans[0].prompt == f"fix {a.sample_id}" and plans[0].round == 1 and plans[0].indices == [0]
    sample(item, 0, "fixed", stage="repair", parent=a.sample_id, round_=1)
    assert [p.parent_id for p in children_of(c, item, "repair", [a.sample_id, b.sample_id],
                                             lambda parent: "", 1)] == [b.sample_id]


def test_verify_returns_verdicts_and_leaves_its_input_alone() -> None:
    c, item = ctx(), WorkItem(problem())
    sample(item, 0, "The answer is \\boxed{5}")
    sample(item, 1, "The answer is \\boxed{6}")
    before = dict(item.state.verdicts)
    out = verify_answers(c, [item])
    assert item.state.verdicts == before  # nothing written into what was handed in
    assert all(isinstance(r, VerdictRow) for r in out.rows)
    assert sorted((r.answer, r.outcome) for r in out.rows) == [("5", "pass"), ("6", "fail")]
    for row in out.rows:
        item.add(row)
    assert verify_answers(c, [item]).rows == []  # everything judged: nothing to do


def test_a_judge_that_raises_is_an_error_verdict_not_a_crash() -> None:
    c, item = ctx(), WorkItem(problem())
    sample(item, 0, "x")

    def broken(item: WorkItem, s: SampleRow):  # noqa: ANN202
        raise RuntimeError("boom")

    out = judge_unjudged(c, [item], "answer", "1", broken, crash_reason="checker_error", crash_feedback="f")
    (row,) = out.rows
    assert (row.outcome, row.reason) == ("error", "checker_error") and "boom" in (row.details or "")


def test_repair_plans_only_failed_candidates_of_the_previous_round() -> None:
    c, item = ctx(), WorkItem(problem())
    sample(item, 0, "The answer is \\boxed{5}")
    wrong = sample(item, 1, "The answer is \\boxed{7}")
    for row in verify_answers(c, [item]).rows:
        item.add(row)
    # solved problems are not repaired by default
    assert plan_repair(c, [item], 1) == []
    plans = plan_repair(ctx(**{"solve.repair_after_pass": True}), [item], 1)
    assert [p.parent_id for p in plans] == [wrong.sample_id] and "\\boxed{7}" in plans[0].prompt


def test_select_majority_and_result_row() -> None:
    c, item = ctx(), WorkItem(problem())
    for i, text in enumerate(["\\boxed{6}", "\\boxed{5}", "\\boxed{6}"]):
        sample(item, i, text)
    for row in verify_answers(c, [item]).rows:
        item.add(row)
    (result,) = select_answers(c, [item]).rows
    assert isinstance(result, ResultRow) and item.state.result is None
    assert (result.selected_answer, result.correct, result.solved, result.n_samples, result.n_passed) == \
        ("6", False, True, 3, 1)


def test_plan_generate_then_sample_request_returns_calls_and_samples() -> None:
    """The generating stage's task body against the STAND-IN server: one request, its
    call row and one sample per choice, with tokens; nothing stored anywhere."""
    from proofflow.tasks import resources

    with InstantServer() as srv, resources.scoped():
        c = ctx(**{"endpoint.base_urls": [srv.base_url]})
        item = WorkItem(problem())
        (plan,) = plan_generate(c, [item])
        out = sample_request(c, plan)
        assert srv.behaviour.requests == 1
    calls = [r for r in out.rows if isinstance(r, CallRow)]
    samples = [r for r in out.rows if isinstance(r, SampleRow)]
    assert len(calls) == 1 and calls[0].status == "ok" and calls[0].stage == "generate"
    assert [s.sample_id for s in samples] == plan.ids and all(s.call_id == calls[0].call_id for s in samples)
    assert all(s.completion_tokens and s.prompt_tokens is not None for s in samples)
    assert item.state.samples == {}


def test_a_formal_repair_round_resumed_after_one_repair_passed_still_asks_the_rest() -> None:
    """As tasks/repair.py (H4's Dask flow-kill finding): a round is skipped only when an
    earlier round proved the problem, so a run resumed mid-round asks the round's other
    repairs, like a clean run."""
    from proofflow.problems import coq_examples
    from proofflow.tasks.context import ProofProblem
    from proofflow.tasks.formal_repair import plan_formal_repair

    c = ctx(**{"prove.samples": 3})
    it = WorkItem(ProofProblem.of(coq_examples()[0]))

    def audit(s: SampleRow, outcome: str) -> VerdictRow:
        return VerdictRow(s.sample_id, "formal_audit", "1", RUN, it.problem.id, outcome, "x", None, "no", "{}", 0.0)

    parents = [sample(it, i, "proof") for i in range(3)]
    it.add(*[audit(p, "fail") for p in parents])
    assert len(plan_formal_repair(c, [it], 1)) == 3
    done = [sample(it, 0, "fixed", stage="repair", parent=p.sample_id, round_=1) for p in parents[:2]]
    it.add(audit(done[0], "pass"), audit(done[1], "fail"))
    assert [p.parent_id for p in plan_formal_repair(c, [it], 1)] == [parents[2].sample_id]
    assert plan_formal_repair(c, [it], 2) == []  # proved in round 1: round 2 is skipped
