"""The proving stages as pure functions with the REAL Coq checker, without Prefect:
given samples in, verdicts / new samples / cache entries out, inputs untouched."""

from __future__ import annotations

import shutil

import pytest

from proofflow.config import load_settings
from proofflow.keys import sample_id
from proofflow.problems import coq_examples
from proofflow.storage.check_cache import CheckCacheRow, result_from_json
from proofflow.storage.records import ResultRow, SampleRow, VerdictRow
from proofflow.tasks import resources
from proofflow.tasks.check_proofs import check_candidates
from proofflow.tasks.context import ProofProblem, RunContext, WorkItem
from proofflow.tasks.finalize import finalize_items
from proofflow.tasks.formal_runtime import KnownChecks
from proofflow.tasks.prove_holes import prove_items
from proofflow.verifiers.formal import CacheKey

pytestmark = pytest.mark.skipif(shutil.which("coqtop") is None, reason="Coq not installed")

RUN = "run-f"


def ctx(**overrides: object) -> RunContext:
    settings = load_settings(overrides={"prove.workers": 1, "prove.hole_budget": 0, **overrides})
    return RunContext(RUN, "r", "coq_examples", settings)


def item(name: str) -> WorkItem:
    by_name = {p.name: p for p in coq_examples()}
    return WorkItem(ProofProblem.of(by_name[name]))


def add_sample(it: WorkItem, stage: str, text: str, idx: int = 0) -> SampleRow:
    sid = sample_id(RUN, it.problem.id, stage, None, idx)
    row = SampleRow(sid, RUN, it.problem.id, stage, None, idx, 0, None, "m", None, None, None, "p",
                    text, "stop", 1, 1, True, 0.0, None)
    it.state.samples[sid] = row
    return row


def test_check_returns_raw_and_audited_verdicts_and_new_cache_entries() -> None:
    it = item("linear_two_vars")
    good = add_sample(it, "generate", "```coq\nTheorem linear_two_vars : forall x y : Z, x + y = 10 -> "
                                      "x - y = 2 -> x = 6.\nProof. intros x y H1 H2. lia. Qed.\n```", 0)
    with resources.scoped():
        out = check_candidates(ctx(), [it], KnownChecks())
        verdicts = {(r.sample_id, r.verifier): r for r in out.rows if isinstance(r, VerdictRow)}
        cache = [r for r in out.rows if isinstance(r, CheckCacheRow)]
        assert verdicts[(good.sample_id, "formal_audit")].outcome == "pass"
        assert verdicts[(good.sample_id, "coq")].reason == "complete"
        assert it.state.verdicts == {}  # the input is untouched
        assert len(cache) == 1 and out.figures["checks_run"] == 1
        # handed the cache entries it returned, the same check costs no checker time
        known = {CacheKey(r.checker, r.header_hash, r.source_hash): result_from_json(r.result) for r in cache}
        again = check_candidates(ctx(), [it], KnownChecks(known))
    assert again.figures["checks_run"] == 0 and again.figures["cache_hits"] == 1
    assert not any(isinstance(r, CheckCacheRow) for r in again.rows)


def test_sketch_holes_closed_by_automation_then_finalize() -> None:
    it = item("am_gm_two")
    add_sample(it, "sketch", """```coq
Theorem am_gm_two : forall a b : Z, 2 * a * b <= a * a + b * b.
Proof.
  intros a b.
  assert (h2 : 0 <= (a - b) * (a - b)) by apply Z.square_nonneg.
  admit.
Qed.
```""")
    c = ctx(**{"prove.strategy": "dsp"})
    with resources.scoped():
        checked = check_candidates(c, [it], KnownChecks())
        for row in checked.rows:
            it.add(row)
        assert [r.outcome for r in checked.rows if isinstance(r, VerdictRow) and r.verifier == "formal_audit"] \
            == ["fail"]
        n_samples = len(it.state.samples)
        holes = prove_items(c, [it], "sketch", KnownChecks())
    assert len(it.state.samples) == n_samples  # new rows are returned, not written into the input
    stages = [r.stage for r in holes.rows if isinstance(r, SampleRow)]
    assert "prove_hole" in stages and stages[-1] == "assemble"
    assembled = [r for r in holes.rows if isinstance(r, SampleRow) and r.stage == "assemble"][0]
    audit = [r for r in holes.rows if isinstance(r, VerdictRow) and r.sample_id == assembled.sample_id
             and r.verifier == "formal_audit"]
    assert audit and audit[0].outcome == "pass"
    for row in holes.rows:
        it.add(row)
    (result,) = finalize_items(c, [it]).rows
    assert isinstance(result, ResultRow) and result.solved and result.selected_sample_id == assembled.sample_id


def test_hole_proving_that_loses_the_model_keeps_what_it_made(tmp_path: object) -> None:
    """The endpoint is dead when a hole needs the model: the stage raises the client's
    error, and the rows it made before (mask, automation attempts and their verdicts,
    cache entries) ride on the exception for the flow to store."""
    import socket

    from proofflow.llm.client import EndpointError

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}/v1"
    it = item("am_gm_two")
    add_sample(it, "sketch", "```coq\nTheorem am_gm_two : forall a b : Z, 2 * a * b <= a * a + b * b.\n"
                             "Proof.\n  intros a b.\n  admit.\nQed.\n```")
    c = ctx(**{"prove.strategy": "dsp", "prove.hole_budget": 1, "prove.automation_coq": ["reflexivity"],
               "endpoint.base_urls": [dead], "endpoint.max_retries": 0, "endpoint.model": "none"})
    with resources.scoped(), pytest.raises(EndpointError) as failed:
        prove_items(c, [it], "sketch", KnownChecks())
    partial = failed.value.stage_output  # type: ignore[attr-defined]
    stages = {r.stage for r in partial.rows if isinstance(r, SampleRow)}
    assert "prove_hole" in stages  # the automation attempt before the model was asked
    assert any(isinstance(r, VerdictRow) and r.verifier == "coq_hole" for r in partial.rows)
    assert any(isinstance(r, CheckCacheRow) for r in partial.rows)
    assert failed.value.calls and failed.value.calls[0].status == "error"
