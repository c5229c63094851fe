"""The metric views (storage/views.sql) against values computed by hand.

The fixture below is small enough to check on paper; every expected number in this file
is derived in the comments next to it, not from the code under test.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from proofflow.storage import metrics
from proofflow.storage.db import Store
from proofflow.storage.records import (
    CallRow,
    ProblemRow,
    ResultRow,
    Row,
    RunProblemRow,
    RunRow,
    SampleRow,
    VerdictRow,
)

REFERENCES = {"P1": "7", "P2": "4", "P3": "x", "P4": "0"}


def _run(run_id: str, name: str, model: str) -> RunRow:
    return RunRow(run_id=run_id, name=name, strategy="sample_verify_repair", problem_set="fixture",
                  model=model, config="{}", config_hash="h", code_version="test", status="completed")


def _sample(run: str, problem: str, idx: int, *, stage: str = "generate", round_: int = 0,
            parent: str | None = None, model: str = "m1", cost: float | None = 0.01,
            prompt: int = 100, completion: int = 50) -> SampleRow:
    return SampleRow(
        sample_id=f"{run}/{problem}/{stage}/{idx}", run_id=run, problem_id=problem, stage=stage,
        parent_id=parent, idx=idx, round=round_, call_id=None, model=model, endpoint="e",
        params=None, seed=idx, prompt="p", completion="c", finish_reason="stop",
        prompt_tokens=prompt, completion_tokens=completion, tokens_exact=True, latency_s=0.1,
        cost=cost,
    )


def _verdict(sample: SampleRow, outcome: str, answer: str | None,
             verifier: str = "answer") -> VerdictRow:
    return VerdictRow(sample_id=sample.sample_id, verifier=verifier, verifier_version="1",
                      run_id=sample.run_id, problem_id=sample.problem_id, outcome=outcome,
                      reason=None, answer=answer, feedback=None, details=None, duration_s=0.0)


def _call(run: str, problem: str, stage: str, i: int, *, status: str = "ok",
          prompt: int | None = 500, completion: int | None = 250,
          cost: float | None = 0.05) -> CallRow:
    return CallRow(call_id=f"{run}/{problem}/{stage}/call{i}", run_id=run, problem_id=problem,
                   stage=stage, endpoint="e", model="m1", n=5, seed=0, attempt=i, status=status,
                   error=None if status == "ok" else "boom", prompt_tokens=prompt,
                   completion_tokens=completion, latency_s=1.0, cost=cost)


def _result(run: str, problem: str, answer: str | None, correct: bool, solved: bool,
            n: int, passed: int) -> ResultRow:
    return ResultRow(run_id=run, problem_id=problem, selection="majority", selected_answer=answer,
                     selected_sample_id=None, correct=correct, solved=solved, n_samples=n,
                     n_passed=passed)


def fixture_rows() -> list[Row]:
    """Three runs.

    run A ("alpha", priced, with call rows), problems P1..P4, 5 generate samples each
    for P1..P3, none for P4:
      P1 answers 7 ✓, 5, 5, \\boxed{7} ✓, (none)          n=5 c=2
      P2 answers 1, 2, 2, 3, 2 (all wrong); one repair of idx 1 answers 4 ✓
      P3 answers a, b, b, c, x ✓                           n=5 c=1
    self_verify also judged P1 and P3's generate samples (see test_verifier_views).
    run B ("beta", unpriced, no call rows): P1, 4 samples, idx 2 passes.
    run C ("gamma", priced): P2, 2 samples, both wrong.
    """
    rows: list[Row] = [_run("A", "alpha", "m1"), _run("B", "beta", "m2"), _run("C", "gamma", "m1")]
    rows += [ProblemRow(problem_id=p, source="fixture.jsonl", source_id=p.lower(), split=None,
                        kind="answer", statement=f"problem {p}", formal_statement=None,
                        header=None, reference_answer=ref, metadata=None)
             for p, ref in REFERENCES.items()]
    rows += [RunProblemRow(run_id="A", problem_id=p, position=i) for i, p in enumerate(REFERENCES)]
    rows += [RunProblemRow(run_id="B", problem_id="P1", position=0),
             RunProblemRow(run_id="C", problem_id="P2", position=0)]

    def add(run: str, problem: str, answers: list[tuple[str | None, str]], **kw) -> list[SampleRow]:
        made = []
        for i, (answer, outcome) in enumerate(answers):
            s = _sample(run, problem, i, **kw)
            made.append(s)
            rows.extend([s, _verdict(s, outcome, answer)])
        return made

    p1 = add("A", "P1", [("7", "pass"), ("5", "fail"), ("5", "fail"), ("\\boxed{7}", "pass"),
                         (None, "fail")])
    p2 = add("A", "P2", [("1", "fail"), ("2", "fail"), ("2", "fail"), ("3", "fail"), ("2", "fail")])
    repair = _sample("A", "P2", 0, stage="repair", round_=1, parent=p2[1].sample_id, cost=0.02,
                     prompt=150, completion=80)
    rows += [repair, _verdict(repair, "pass", "4")]
    p3 = add("A", "P3", [("a", "fail"), ("b", "fail"), ("b", "fail"), ("c", "fail"), ("x", "pass")])
    for s, outcome in zip(p1 + p3, ["pass", "pass", "fail", "fail", "error",
                                    "pass", "fail", "fail", "fail", "pass"]):
        rows.append(_verdict(s, outcome, None, verifier="self_verify"))
    rows += [_call("A", p, "generate", 0) for p in ("P1", "P2", "P3")]
    rows.append(_call("A", "P2", "generate", 1, status="error", prompt=None, completion=None,
                      cost=None))  # failed, nothing billed: must not make the cost unknown
    rows.append(_call("A", "P2", "repair", 2, prompt=150, completion=80, cost=0.02))
    rows += [_result("A", "P1", "7", True, True, 5, 2), _result("A", "P2", "2", False, True, 6, 1),
             _result("A", "P3", "b", False, True, 5, 1)]

    add("B", "P1", [("5", "fail"), ("6", "fail"), ("7", "pass"), ("8", "fail")], model="m2",
        cost=None)
    rows.append(_result("B", "P1", "5", False, True, 4, 1))

    add("C", "P2", [("1", "fail"), ("1", "fail")])
    rows.append(_result("C", "P2", "1", False, False, 2, 0))
    return rows


def build_fixture_db(path: Path) -> Store:
    store = Store(path)
    store.write(fixture_rows())
    return store


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    return build_fixture_db(tmp_path_factory.mktemp("views") / "fixture.duckdb")


def _comb_pass_at_k(n: int, c: int, k: int) -> float:
    return 1.0 - math.comb(n - c, k) / math.comb(n, k)


def test_views_are_versioned(store: Store) -> None:
    _, rows = store.query("SELECT value FROM schema_info WHERE key = 'views_version'")
    assert rows == [(metrics.VIEWS_VERSION,)]


def test_pass_at_k_by_hand_n5_c2(store: Store) -> None:
    # 1 - C(3,k)/C(5,k): k=1: 1-3/5; k=2: 1-3/10; k=3: 1-1/10; k=4,5: C(3,k)=0 -> 1.
    rows = {r["k"]: r for r in metrics.pass_at_k_problem(store, "A") if r["problem_id"] == "P1"}
    assert sorted(rows) == [1, 2, 3, 4, 5]
    assert {k: (r["n"], r["c"]) for k, r in rows.items()} == {k: (5, 2) for k in range(1, 6)}
    for k, expected in {1: 0.4, 2: 0.7, 3: 0.9, 4: 1.0, 5: 1.0}.items():
        assert rows[k]["pass_at_k"] == pytest.approx(expected, abs=1e-12)


def test_pass_at_k_averaged_per_run(store: Store) -> None:
    # P1: .4 .7 .9 1 1; P2 (c=0): 0s; P3 (n=5, c=1: k/5): .2 .4 .6 .8 1. Mean of three.
    expected = {1: 0.6 / 3, 2: 1.1 / 3, 3: 1.5 / 3, 4: 1.8 / 3, 5: 2.0 / 3}
    rows = metrics.pass_at_k(store, ["A"])
    assert [r["k"] for r in rows] == [1, 2, 3, 4, 5]
    for r in rows:
        assert r["problems"] == 3
        assert r["pass_at_k"] == pytest.approx(expected[r["k"]], abs=1e-12)


def test_pass_at_k_estimator_is_stable_for_large_n(store: Store) -> None:
    cases = [(2000, 3, 1000), (5000, 1, 1), (5000, 4990, 7), (10000, 17, 500), (10, 0, 3),
             (3000, 1500, 1400), (50, 20, 3)]
    sql = "SELECT " + ", ".join(f"pf_pass_at_k({n}, {c}, {k})" for n, c, k in cases)
    _, [row] = store.query(sql)
    for value, (n, c, k) in zip(row, cases):
        assert value == pytest.approx(_comb_pass_at_k(n, c, k), rel=1e-9, abs=1e-12)
    _, [(outside,)] = store.query("SELECT pf_pass_at_k(5, 2, 6)")
    assert outside is None


def test_coverage_counts_every_problem_of_the_run(store: Store) -> None:
    # Denominator 4 (P4 was never attempted). P1 passes at its 1st sample, P3 at its 5th.
    rows = metrics.coverage(store, ["A"])
    assert [(r["k"], r["solved"], r["problems"]) for r in rows] == [
        (1, 1, 4), (2, 1, 4), (3, 1, 4), (4, 1, 4), (5, 2, 4)]
    assert rows[-1]["coverage"] == pytest.approx(0.5)
    assert rows[0]["pass_at_k"] == pytest.approx(0.2)


def test_maj_at_k_by_hand(store: Store) -> None:
    # P1 votes 7, 5, 5, 7 (\boxed{7} normalised), no answer:
    #   k=1 {7}: 7 ✓; k=2 tie 7/5, 7 seen first ✓; k=3 5 wins ✗; k=4,5 tie, 7 first ✓.
    # P2: 1 | 1,2 tie -> 1 | 2 ... always wrong. P3: a | a,b -> a | b ... always wrong.
    per_problem = {(r["problem_id"], r["k"]): r for r in metrics.maj_at_k_problem(store, "A")}
    assert [per_problem[("P1", k)]["correct"] for k in range(1, 6)] == [True, True, False, True, True]
    assert per_problem[("P1", 4)]["votes"] == 2
    assert per_problem[("P1", 3)]["majority_answer"] == "5"
    assert not any(per_problem[(p, k)]["correct"] for p in ("P2", "P3") for k in range(1, 6))
    assert per_problem[("P3", 5)]["majority_answer"] == "b"
    run = {r["k"]: r["maj_at_k"] for r in metrics.maj_at_k(store, ["A"])}
    assert run == pytest.approx({1: 1 / 3, 2: 1 / 3, 3: 0.0, 4: 1 / 3, 5: 1 / 3})


def test_vote_key_normalisation(store: Store) -> None:
    _, [row] = store.query(
        "SELECT pf_vote_key(' \\boxed{ 7 } '), pf_vote_key('$\\dfrac{1}{2}$'), "
        "pf_vote_key('\\left( 1,2 \\right).'), pf_vote_key(''), pf_vote_key(NULL)")
    assert row == ("7", "\\frac{1}{2}", "(1,2)", None, None)


def test_cost_of_pass(store: Store) -> None:
    by_run = {r["run_id"]: r for r in metrics.cost_of_pass(store, ["A", "B", "C"])}
    a = by_run["A"]
    # 15 generate samples at 0.01, 3 pass: 0.01 / (3/15) = 0.05.
    assert (a["attempts"], a["passed"]) == (15, 3)
    assert a["attempt_cost"] == pytest.approx(0.01)
    assert a["cost_of_pass"] == pytest.approx(0.05)
    # Whole pipeline from the calls: 3 x 0.05 + repair 0.02 (the failed call billed
    # nothing) = 0.17 for 1 correct problem out of 3 finished.
    assert a["total_cost"] == pytest.approx(0.17)
    assert a["cost_per_problem"] == pytest.approx(0.17 / 3)
    assert a["accuracy"] == pytest.approx(1 / 3)
    assert a["cost_of_pass_run"] == pytest.approx(0.17)
    # B has no prices: unknown, never 0.
    assert by_run["B"]["cost_of_pass"] is None and by_run["B"]["total_cost"] is None
    assert by_run["B"]["success_rate"] == pytest.approx(0.25)
    # C is priced but nothing passed: infinite.
    assert math.isinf(by_run["C"]["cost_of_pass"]) and math.isinf(by_run["C"]["cost_of_pass_run"])
    by_model = {(r["run_id"], r["model"]): r for r in metrics.cost_of_pass_by_model(store, ["A", "B"])}
    assert by_model[("A", "m1")]["cost_of_pass"] == pytest.approx(0.05)
    assert by_model[("B", "m2")]["cost_of_pass"] is None


def test_usage_by_stage_and_model(store: Store) -> None:
    rows = {(r["run_id"], r["stage"]): r for r in metrics.usage(store, ["A", "B"])}
    gen = rows[("A", "generate")]
    # From calls: 4 calls (one failed, unbilled), 3 x 500 prompt, 3 x 250 completion.
    assert (gen["source"], gen["calls"], gen["failed_calls"], gen["samples"]) == ("calls", 4, 1, 15)
    assert (gen["prompt_tokens"], gen["completion_tokens"]) == (1500, 750)
    assert gen["cost"] == pytest.approx(0.15)
    rep = rows[("A", "repair")]
    assert (rep["samples"], rep["tokens"], rep["cost"]) == (1, 230, pytest.approx(0.02))
    # B recorded no calls: counted from its samples, and unpriced.
    b = rows[("B", "generate")]
    assert (b["source"], b["samples"], b["prompt_tokens"], b["cost"], b["unpriced"]) == (
        "samples", 4, 400, None, 4)


def test_problem_outcomes(store: Store) -> None:
    rows = {r["problem_id"]: r for r in metrics.problem_outcomes(store, "A")}
    assert list(rows) == ["P1", "P2", "P3", "P4"]  # in run order
    assert rows["P1"]["first_pass_sample_id"] == "A/P1/generate/0"
    assert rows["P2"]["first_pass_stage"] == "repair" and rows["P2"]["first_pass_round"] == 1
    assert (rows["P2"]["samples"], rows["P2"]["passed"], rows["P2"]["generate_passed"]) == (6, 1, 0)
    assert rows["P2"]["cost"] == pytest.approx(0.07)
    assert (rows["P2"]["prompt_tokens"], rows["P2"]["completion_tokens"]) == (650, 330)
    assert rows["P3"]["first_pass_sample_id"] == "A/P3/generate/4"
    assert rows["P4"]["samples"] == 0 and not rows["P4"]["done"] and not rows["P4"]["solved"]
    assert rows["P1"]["correct"] is True and rows["P3"]["selected_answer"] == "b"


def test_verifier_views(store: Store) -> None:
    # self_verify vs truth on P1, P3: TA idx0(P1), idx4(P3); FA P1 idx1, P3 idx0;
    # FR P1 idx3; the other 5 true rejects (one of them an error).
    [audit] = metrics.verifier_audit(store, ["A"])
    assert (audit["verifier"], audit["truth_verifier"], audit["samples"]) == ("self_verify", "answer", 10)
    assert (audit["true_accept"], audit["false_accept"], audit["false_reject"],
            audit["true_reject"], audit["errors"]) == (2, 2, 1, 5, 1)
    assert audit["false_accept_rate"] == pytest.approx(2 / 7)
    assert audit["false_reject_rate"] == pytest.approx(1 / 3)
    assert audit["precision"] == pytest.approx(0.5)
    [pair] = metrics.verifier_agreement(store, ["A"])
    assert (pair["verifier_a"], pair["verifier_b"]) == ("answer", "self_verify")
    assert (pair["both_pass"], pair["a_pass_b_not"], pair["b_pass_a_not"], pair["neither_pass"]) == (2, 1, 2, 5)
    assert pair["agreement"] == pytest.approx(0.7)


def test_verdict_reasons(store: Store) -> None:
    # A's answer verdicts: 2 + 1 (repair) + 1 passes, 3 + 5 + 4 fails; self_verify: 4 pass,
    # 5 fail, 1 error. The fixture records no reason strings ('').
    rows = {(r["verifier"], r["outcome"]): r for r in metrics.verdict_reasons(store, ["A"])}
    assert {k: r["verdicts"] for k, r in rows.items()} == {
        ("answer", "fail"): 12, ("answer", "pass"): 4,
        ("self_verify", "error"): 1, ("self_verify", "fail"): 5, ("self_verify", "pass"): 4}
    assert rows[("answer", "pass")]["share"] == pytest.approx(0.25)
    assert rows[("self_verify", "error")]["share"] == pytest.approx(0.1)
    assert rows[("answer", "fail")]["reason"] == ""


def test_run_summary(store: Store) -> None:
    rows = {r["name"]: r for r in metrics.run_summary_rows(store, ["A", "B", "C"])}
    a = rows["alpha"]
    assert (a["problems"], a["done"], a["solved"], a["correct"], a["n"]) == (4, 3, 3, 1, 5)
    assert a["pass_at_1"] == pytest.approx(0.2)
    assert a["pass_at_n"] == pytest.approx(2 / 3)
    assert a["maj_at_n"] == pytest.approx(1 / 3)
    assert a["tokens"] == 1500 + 750 + 230
    assert a["cost"] == pytest.approx(0.17)
    assert rows["beta"]["cost"] is None
    assert math.isinf(rows["gamma"]["cost_of_pass"])


def test_views_survive_a_fresh_read_only_open(store: Store) -> None:
    # Views and macros live in the file: a second Store (another process's view of the
    # file) can use them read-only without ever writing.
    other = Store(store.path)
    cols, rows = other.query("SELECT k, pass_at_k FROM v_pass_at_k WHERE run_id = 'A' ORDER BY k")
    assert cols == ["k", "pass_at_k"] and len(rows) == 5


def test_each_run_shows_its_own_files_ids(tmp_path: Path) -> None:
    # Issue 12.5: `problems` is shared by content, and the first file's source ids won:
    # a second run over a file naming the same problem differently showed the first's ids.
    s = Store(tmp_path / "ids.duckdb")
    rows: list[Row] = [_run("A", "a", "m1"), _run("B", "b", "m1")]
    rows.append(ProblemRow(problem_id="P1", source="first.jsonl", source_id="first-id", split=None,
                           kind="answer", statement="s", formal_statement=None, header=None,
                           reference_answer="7", metadata='{"from": "first"}'))
    rows.append(RunProblemRow("A", "P1", 0, source_id="first-id", metadata='{"from": "first"}'))
    rows.append(RunProblemRow("B", "P1", 0, source_id="second-id", metadata='{"from": "second"}'))
    s.write(rows)
    assert [r["source_id"] for r in metrics.problem_outcomes(s, "A")] == ["first-id"]
    assert [r["source_id"] for r in metrics.problem_outcomes(s, "B")] == ["second-id"]
    _, meta = s.query("SELECT metadata FROM run_problems WHERE run_id = 'B'")
    assert meta == [('{"from": "second"}',)]
