"""Checks go in batches, one task run each (tasks/check_proofs.py), and the batch size
changes nothing that is stored: the same candidates checked, the same verdicts, the same
cache hits. REAL Coq, a real Prefect harness, real DuckDB; the candidates come from a
RECORDED-COMPLETION stand-in (proofflow/testing/recorded_server.py) whose table, written
here, gives each choice of the request its own proof text."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

import proofflow.tasks.check_proofs as check_proofs
from proofflow.flows.prove import run_prove
from proofflow.problems import coq_examples
from proofflow.storage.db import Store
from proofflow.tasks.context import ProofProblem, WorkItem
from proofflow.testing.recorded_server import RecordedServer, Recording

pytestmark = [pytest.mark.prefect, pytest.mark.skipif(shutil.which("coqtop") is None, reason="Coq not installed")]

STATEMENT = "Theorem linear_two_vars : forall x y : Z, x + y = 10 -> x - y = 2 -> x = 6."


def proof(i: int, tactic: str) -> str:
    return f"```coq\n{STATEMENT}\nProof. intros x y H1 H2. (* candidate {i} *) {tactic}. Qed.\n```\n"


# Choice i of the request: wrong, wrong, the same text as choice 0, right, wrong, right.
TEXTS = [proof(0, "reflexivity"), proof(1, "reflexivity"), proof(0, "reflexivity"),
         proof(3, "lia"), proof(4, "reflexivity"), proof(5, "lia")]


@dataclass
class ByChoice(Recording):
    """Choice `index` of a request gets TEXTS[index] (STAND-IN, not a model)."""

    texts: list[str] = field(default_factory=lambda: list(TEXTS))

    def completion(self, prompt: str, seed: int, index: int) -> str:
        return self.texts[index]


def problem_file(tmp_path: Path) -> Path:
    p = next(p for p in coq_examples() if p.metadata["id"] == "linear_two_vars")
    path = tmp_path / "one.jsonl"
    path.write_text(json.dumps({"id": "linear_two_vars", "backend": "coq", "header": p.header,
                                "statement": p.statement}) + "\n")
    return path


def prove(tmp_path: Path, name: str, batch: int, stop: bool, monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, ...]]:
    """Run whole-proof generation with batches of `batch`; the verdicts as (choice,
    verifier, outcome, reason, cached), and the check task runs' names."""
    monkeypatch.setattr(check_proofs, "CHECK_BATCH", batch)
    db = tmp_path / f"{name}.duckdb"
    with RecordedServer(ByChoice(model="recorded")) as srv:
        run_prove(str(problem_file(tmp_path)), name, problem_set=name, overrides={
            "endpoint.model": "recorded", "endpoint.base_urls": [srv.base_url], "endpoint.max_retries": 0,
            "storage.db_path": str(db), "storage.flush_interval_s": 0.05, "prove.strategy": "whole",
            "prove.samples": len(TEXTS), "prove.repair_rounds": 0, "prove.repair_depth": 0,
            "prove.workers": 1, "prove.stop_on_first_complete": stop, "sampling.max_tokens": 64})
    return Store(db).query("""
        SELECT s.idx, v.verifier, v.outcome, v.reason, json_extract(v.details, '$.cached')::BOOLEAN
        FROM verdicts v JOIN samples s USING (sample_id) ORDER BY s.idx, v.verifier""")[1]


def check_task_names(problem_set: str) -> list[str]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import TaskRunFilter, TaskRunFilterName

    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(task_run_filter=TaskRunFilter(name=TaskRunFilterName(like_=problem_set)))
    return sorted(r.name for r in runs if r.name.startswith("check") and f"· {problem_set} ·" in r.name)


def test_batches_group_repeated_texts_and_keep_the_order() -> None:
    from proofflow.keys import sample_id
    from proofflow.storage.records import SampleRow

    p = next(p for p in coq_examples() if p.metadata["id"] == "linear_two_vars")
    item = WorkItem(ProofProblem.of(p))
    ids = []
    for i, text in enumerate(TEXTS):
        sid = sample_id("r", item.problem.id, "generate", None, i)
        item.state.samples[sid] = SampleRow(sid, "r", item.problem.id, "generate", None, i, 0, None, "m", None,
                                            None, None, "p", text, "stop", 1, 1, True, 0.0, None)
        ids.append(sid)
    # 2 distinct texts a batch: choice 2 repeats choice 0's text, so it rides in batch 1
    assert check_proofs.plan_batches(item, 2) == [[ids[0], ids[1], ids[2]], [ids[3], ids[4]], [ids[5]]]
    assert check_proofs.plan_batches(item, 16) == [ids]


def test_batch_size_changes_nothing_stored(prefect_api: str, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    one = prove(tmp_path, "batch-one", 16, True, monkeypatch)
    split = prove(tmp_path, "batch-split", 2, True, monkeypatch)
    # stop on the first complete: choices 0, 1, 2 (a cache hit of 0), 3 (complete); 4 and 5 never checked
    assert split == one
    audited = [(idx, outcome, cached) for idx, verifier, outcome, _, cached in one if verifier == "formal_audit"]
    assert audited == [(0, "fail", False), (1, "fail", False), (2, "fail", True), (3, "pass", False)]
    # the split run's first two batches ran as their own task runs; the third was not needed
    assert [n.rsplit("· ", 1)[1] for n in check_task_names("batch-split")] == ["batch 1/3", "batch 2/3"]
    assert len(check_task_names("batch-one")) == 1

    # without stop_on_first_complete every candidate is checked, the batches at once
    every = prove(tmp_path, "batch-every", 2, False, monkeypatch)
    audited = [(idx, outcome, cached) for idx, verifier, outcome, _, cached in every if verifier == "formal_audit"]
    assert audited == [(0, "fail", False), (1, "fail", False), (2, "fail", True), (3, "pass", False),
                       (4, "fail", False), (5, "pass", False)]
    assert len(check_task_names("batch-every")) == 3
