"""The prove flows end to end with the REAL Coq checker and a real Prefect harness.

Model outputs come from a RECORDED-COMPLETION stand-in (proofflow/testing/recorded_server.py):
each test writes the completions it needs (a good sketch, a broken sketch, a proof with a
hole, a changed statement, an extra axiom) in plain sight. Everything else — the flow,
masking, automation, the audit, storage, the verdict cache — is the real thing. The same
flows against the real vLLM server are in test_prove_vllm.py.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from proofflow.flows.prove import run_prove
from proofflow.problems import coq_examples
from proofflow.storage.db import Store
from proofflow.testing.recorded_server import RecordedServer, Recording

pytestmark = [pytest.mark.prefect, pytest.mark.skipif(shutil.which("coqtop") is None, reason="Coq not installed")]

FENCE = "```"


def problem_file(tmp_path: Path, ids: list[str]) -> Path:
    by_id = {p.metadata["id"]: p for p in coq_examples()}
    path = tmp_path / "problems.jsonl"
    with path.open("w") as f:
        for i in ids:
            p = by_id[i]
            f.write(json.dumps({"id": i, "backend": "coq", "header": p.header, "statement": p.statement,
                                "informal": p.informal}) + "\n")
    return path


def coq(text: str) -> str:
    return f"Here is the proof.\n{FENCE}coq\n{text.strip()}\n{FENCE}\n"


def settings(url: str, db: Path, **extra: object) -> dict:
    base = {
        "endpoint.model": "recorded", "endpoint.base_urls": [url], "endpoint.max_retries": 0,
        "storage.db_path": str(db), "storage.flush_interval_s": 0.05, "prove.samples": 1,
        "prove.workers": 1, "prove.problems_in_flight": 2, "prove.hole_budget": 1,
        "sampling.max_tokens": 64,
    }
    base.update(extra)
    return base


def q(db: Path, sql: str, *params: object) -> list[tuple]:
    return Store(db).query(sql, list(params))[1]


AM_GM_SKETCH = coq("""
Theorem am_gm_two : forall a b : Z, 2 * a * b <= a * a + b * b.
Proof.
  intros a b.
  assert (h1 : (a - b) * (a - b) = a * a - 2 * a * b + b * b) by admit.
  assert (h2 : 0 <= (a - b) * (a - b)) by apply Z.square_nonneg.
  admit.
Qed.
""")
# Two mistakes the checker rejects: a step proved with the wrong tactic, a lemma that
# does not exist. Masking turns both into holes; automation closes them.
BROKEN_SKETCH = coq("""
Theorem consecutive_sum_odd : forall n : Z, exists k, n + (n + 1) = 2 * k + 1.
Proof.
  intros n.
  exists n.
  assert (h1 : n + (n + 1) = 2 * n + 1) by reflexivity.
  apply Z.no_such_lemma_here.
Qed.
""")
DSP = {
    "Z_scope.\nTheorem am_gm_two": AM_GM_SKETCH,
    "Z_scope.\nTheorem consecutive_sum_odd": BROKEN_SKETCH,
}


def test_dsp_automation_closes_sketch_and_masks_broken_one_then_resumes_without_work(
        prefect_api: str, tmp_path: Path) -> None:
    db = tmp_path / "dsp.duckdb"
    problems = problem_file(tmp_path, ["am_gm_two", "consecutive_sum_odd"])
    with RecordedServer(Recording(answers=dict(DSP))) as srv:
        cfg = settings(srv.base_url, db, **{"prove.strategy": "dsp"})
        summary = run_prove(str(problems), "dsp", overrides=cfg)
        assert summary["solved"] == 2 and summary["done"] == 2
        assert summary["checks_run"] > 0
        first_requests = srv.recording.requests
        assert first_requests == 4  # a draft and a sketch per problem; every hole closed by automation

        # stored: draft → sketch → (mask) → prove_hole attempts → assemble, linked by parent
        rows = dict(q(db, "SELECT stage, count(*) FROM samples GROUP BY stage"))
        assert rows["draft"] == 2 and rows["sketch"] == 2 and rows["mask"] == 1 and rows["assemble"] == 2
        assert rows["prove_hole"] >= 4
        assert q(db, """SELECT count(*) FROM samples WHERE stage <> 'draft' AND
                        parent_id NOT IN (SELECT sample_id FROM samples)""") == [(0,)]
        # automation attempts cost nothing and call nothing
        assert q(db, """SELECT count(*), sum(completion_tokens), count(call_id) FROM samples
                        WHERE model = 'automation'""")[0][1:] == (0, 0)
        # the sketch itself is not a proof (holes); the assembled one is
        verdicts = dict(q(db, """SELECT s.stage, list(v.outcome || ':' || coalesce(v.reason, '')) FROM samples s
                                 JOIN verdicts v USING (sample_id) WHERE v.verifier = 'formal_audit'
                                 GROUP BY s.stage"""))
        assert sorted(verdicts["sketch"]) == ["fail:compile_error", "fail:hole"]
        assert verdicts["assemble"] == ["pass:", "pass:"]
        masked = q(db, "SELECT completion FROM samples WHERE stage = 'mask'")[0][0]
        assert "by admit." in masked and "reflexivity" not in masked and "no_such_lemma" not in masked
        closed = q(db, """SELECT count(*) FROM verdicts WHERE verifier = 'coq_hole' AND outcome = 'pass'""")[0][0]
        assert closed == 4  # two holes per sketch, each closed by one tactic
        final = q(db, """SELECT s.completion FROM results r JOIN samples s ON s.sample_id = r.selected_sample_id
                         WHERE s.completion LIKE 'Theorem am_gm_two%'""")[0][0]
        assert "admit" not in final and "Qed." in final

        totals = ("SELECT (SELECT count(*) FROM samples), (SELECT count(*) FROM verdicts), "
                  "(SELECT count(*) FROM check_cache)")
        counts = q(db, totals)
        # 1. rerun of a finished run: nothing asked, nothing checked
        again = run_prove(str(problems), "dsp", overrides=cfg)
        assert srv.recording.requests == first_requests and again["checks_run"] == 0
        # 2. resume mid-problem, as if killed before the last stage: the assembled proofs
        # and results are gone; the flow replays the stages from stored samples and the
        # persisted verdict cache, and stores the same rows again
        with Store(db).connect() as con:
            con.execute("DELETE FROM verdicts WHERE sample_id IN "
                        "(SELECT sample_id FROM samples WHERE stage = 'assemble')")
            con.execute("DELETE FROM samples WHERE stage = 'assemble'")
            con.execute("DELETE FROM results")
        resumed = run_prove(str(problems), "dsp", overrides=cfg)
        assert resumed["solved"] == 2
        assert srv.recording.requests == first_requests
        assert resumed["checks_run"] == 0 and resumed["cache_hits"] > 0
        assert q(db, totals) == counts
        # 3. another run on the same outputs: new samples, but no proof is checked twice
        other = run_prove(str(problems), "dsp-2", overrides=cfg)
        assert other["solved"] == 2 and other["checks_run"] == 0
        assert srv.recording.requests == 2 * first_requests


WHOLE = {
    "Z_scope.\nTheorem linear_two_vars": coq("""
Theorem linear_two_vars : forall x y : Z, x + y = 10 -> x - y = 2 -> x = 6.
Proof. intros x y H1 H2. lia. Qed.
"""),
    "Z_scope.\nTheorem binomial_square": coq("""
Theorem binomial_square : forall a b : Z, (a + b) * (a + b) = a * a + 2 * a * b + b * b.
Proof. intros. admit. Admitted.
"""),
    # checks in Coq, but it is not the problem's statement
    "Z_scope.\nTheorem diff_of_squares": coq("""
Theorem diff_of_squares : forall a b : Z, (a - b) * (a + b) = (a - b) * (a + b).
Proof. intros. reflexivity. Qed.
"""),
    "Z_scope.\nTheorem square_nonneg_sum": coq("""
Axiom cheat : forall P : Prop, P.
Theorem square_nonneg_sum : forall a b : Z, 0 <= a * a + b * b.
Proof. intros. apply cheat. Qed.
"""),
    "Z_scope.\nTheorem max_min_sum": coq("""
Theorem max_min_sum : forall a b : Z, Z.max a b + Z.min a b = a + b.
Proof. intros. rewrite Z.no_such_rewrite. Qed.
"""),
    # the repair round's answer for the proof with a hole (the attempt is in the prompt)
    "--- attempt ---\nTheorem binomial_square": coq("""
Theorem binomial_square : forall a b : Z, (a + b) * (a + b) = a * a + 2 * a * b + b * b.
Proof. intros. ring. Qed.
"""),
}


def test_whole_proof_rejections_repair_and_apollo(prefect_api: str, tmp_path: Path) -> None:
    db = tmp_path / "whole.duckdb"
    ids = ["linear_two_vars", "binomial_square", "diff_of_squares", "square_nonneg_sum", "max_min_sum"]
    problems = problem_file(tmp_path, ids)
    with RecordedServer(Recording(answers=dict(WHOLE), default="I cannot prove this.")) as srv:
        cfg = settings(srv.base_url, db, **{"prove.strategy": "whole", "prove.repair_rounds": 1,
                                            "prove.repair_depth": 1, "prove.hole_budget": 0})
        summary = run_prove(str(problems), "whole", overrides=cfg)
    assert summary["done"] == 5
    first = dict(q(db, """SELECT p.source_id, v.outcome || ':' || coalesce(v.reason, '') FROM samples s
                          JOIN problems p USING (problem_id) JOIN verdicts v USING (sample_id)
                          WHERE s.stage = 'generate' AND v.verifier = 'formal_audit'"""))
    assert first == {
        "linear_two_vars": "pass:", "binomial_square": "fail:hole",
        "diff_of_squares": "fail:statement_mismatch", "square_nonneg_sum": "fail:axiom_declared",
        "max_min_sum": "fail:compile_error",
    }
    # the raw checker said "complete" for the changed statement and the axiom; the audit did not
    raw = dict(q(db, """SELECT p.source_id, v.reason FROM samples s JOIN problems p USING (problem_id)
                        JOIN verdicts v USING (sample_id) WHERE s.stage = 'generate' AND v.verifier = 'coq'"""))
    assert raw["diff_of_squares"] == "complete" and raw["square_nonneg_sum"] == "complete"
    feedback = q(db, """SELECT v.feedback FROM samples s JOIN problems p USING (problem_id)
                        JOIN verdicts v USING (sample_id)
                        WHERE p.source_id = 'max_min_sum' AND s.stage = 'generate'
                        AND v.verifier = 'formal_audit'""")[0][0]
    assert "error at line" in feedback
    # model repair: solved binomial_square, as a sample whose parent is the rejected proof
    rep = q(db, """SELECT p.source_id, v.outcome, parent.stage FROM samples s JOIN problems p USING (problem_id)
                   JOIN verdicts v ON v.sample_id = s.sample_id AND v.verifier = 'formal_audit'
                   JOIN samples parent ON parent.sample_id = s.parent_id WHERE s.stage = 'repair'""")
    assert ("binomial_square", "pass", "generate") in rep
    assert all(r[2] == "generate" for r in rep) and not any(r[0] == "linear_two_vars" for r in rep)
    # APOLLO repair: the failing step of max_min_sum is masked, automation proves it
    solved = dict(q(db, "SELECT p.source_id, r.solved FROM results r JOIN problems p USING (problem_id)"))
    assert solved["linear_two_vars"] and solved["binomial_square"] and solved["max_min_sum"]
    apollo = q(db, """SELECT s.completion FROM samples s JOIN problems p USING (problem_id)
                      JOIN verdicts v ON v.sample_id = s.sample_id AND v.verifier = 'formal_audit'
                      WHERE p.source_id = 'max_min_sum' AND s.stage = 'assemble' AND v.outcome = 'pass'""")
    assert apollo and "no_such_rewrite" not in apollo[0][0]
    # where the budget went, by stage (the docs' query)
    by_stage = dict(q(db, """SELECT stage, sum(prompt_tokens + completion_tokens) FROM samples GROUP BY stage"""))
    assert by_stage["generate"] > 0 and by_stage["repair"] > 0 and by_stage["prove_hole"] == 0
    # the ground-truth views see formal_audit
    assert q(db, "SELECT solved FROM v_run_summary")[0][0] == sum(solved.values())


def test_stop_on_first_complete_leaves_other_candidates_unchecked(prefect_api: str, tmp_path: Path) -> None:
    db = tmp_path / "stop.duckdb"
    problems = problem_file(tmp_path, ["linear_two_vars"])
    key = "Z_scope.\nTheorem linear_two_vars"
    with RecordedServer(Recording(answers={key: WHOLE[key]})) as srv:
        summary = run_prove(str(problems), "stop", overrides=settings(
            srv.base_url, db, **{"prove.strategy": "whole", "prove.samples": 3}))
        assert srv.recording.requests == 1  # one request with n=3
    assert summary["solved"] == 1 and summary["checks_run"] == 1
    assert q(db, "SELECT count(*) FROM samples WHERE stage = 'generate'") == [(3,)]
    assert q(db, "SELECT count(*) FROM verdicts WHERE verifier = 'formal_audit'") == [(1,)]
    assert q(db, "SELECT count(*) FROM samples WHERE stage = 'repair'") == [(0,)]


def test_problem_loading_detects_formats_and_backend(shared_data: Path) -> None:
    from proofflow.config import load_settings
    from proofflow.flows.prove import load_proof_problems

    lean = load_settings(overrides={"prove.backend": "lean", "prove.limit": 3})
    for name in ("minif2f-deepseek", "minif2f-yangky11"):
        files = sorted((shared_data / name).rglob("*.jsonl"))
        if not files:
            pytest.skip(f"no JSONL under {shared_data / name}")
        loaded = load_proof_problems(str(files[0]), lean)
        assert len(loaded) == 3 and all(p.formal.statement.endswith(":= by") for p in loaded)
        assert len({p.id for p in loaded}) == 3
        with pytest.raises(ValueError, match="not coq problems"):
            load_proof_problems(str(files[0]), load_settings(overrides={"prove.limit": 3}))
    coq = load_proof_problems("coq-examples", load_settings())
    assert len(coq) == 23 and coq[0].source_id == "linear_two_vars"


def test_lean_backend_without_toolchain_says_why(tmp_path: Path) -> None:
    from proofflow.config import load_settings
    from proofflow.tasks.checker_settings import make_checker

    settings = load_settings(overrides={"prove.backend": "lean", "prove.lean_checker": "repl",
                                        "prove.lean_project_dir": str(tmp_path)})
    with pytest.raises(RuntimeError, match="Lean backend unavailable"):
        make_checker(settings.prove)
