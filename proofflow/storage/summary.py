"""A run's headline figures: what `proofflow show`, the CLI after a run and the solve
flow's return value display. Built on the v_run_summary view (docs/sql.md)."""

from __future__ import annotations

from typing import Any

from proofflow.storage import metrics
from proofflow.storage.db import StorageError, Store


def run_headline(store: Store, run_id: str) -> dict[str, Any]:
    """One run's headline figures: v_run_summary's row plus the number of failed model calls."""
    rows = metrics.run_summary_rows(store, [run_id])
    if not rows:
        raise StorageError(f"no run {run_id!r} in {store.path}")
    summary = dict(rows[0])
    _, ((failed,),) = store.query(
        "SELECT count(*) FROM calls WHERE run_id = ? AND status = 'error'", [run_id]
    )
    summary["failed_calls"] = failed
    return summary


def per_problem(store: Store, run_id: str) -> list[dict[str, Any]]:
    """v_problem_outcomes' rows for the run, in problem-file order."""
    return sorted(metrics.problem_outcomes(store, run_id), key=lambda r: r["position"])


# The status of each problem from its stored verdicts: the passing sample's stage, or
# the reason the last audited candidate was rejected.
_PROOF_STATUS = """
WITH audited AS (
    SELECT s.problem_id, s.stage, s.created_at, v.outcome, v.reason
    FROM samples s JOIN verdicts v ON v.sample_id = s.sample_id AND v.verifier = 'formal_audit'
    WHERE s.run_id = $run
), usage AS (
    SELECT problem_id, sum(prompt_tokens + completion_tokens) AS tokens, count(*) AS samples,
           count(*) FILTER (WHERE model = 'automation') AS automation
    FROM samples WHERE run_id = $run GROUP BY problem_id
)
SELECT coalesce(rp.source_id, p.source_id) AS source_id, r.solved,
       (SELECT stage FROM audited a WHERE a.problem_id = rp.problem_id AND a.outcome = 'pass'
        ORDER BY created_at LIMIT 1) AS proved_by,
       (SELECT outcome || ':' || coalesce(reason, '') FROM audited a WHERE a.problem_id = rp.problem_id
        ORDER BY created_at DESC LIMIT 1) AS last_verdict,
       u.samples, u.automation, u.tokens
FROM run_problems rp JOIN problems p USING (problem_id)
LEFT JOIN results r ON r.run_id = rp.run_id AND r.problem_id = rp.problem_id
LEFT JOIN usage u ON u.problem_id = rp.problem_id
WHERE rp.run_id = $run ORDER BY rp.position
"""



def proof_status(store: Store, run_id: str) -> list[tuple[Any, ...]]:
    """(source_id, solved, proved_by stage, last audit verdict, samples, automation
    attempts, tokens) per problem of a proving run, in problem-file order."""
    return store.query(_PROOF_STATUS, {"run": run_id})[1]


def sample_totals(store: Store, run_id: str) -> dict[str, Any]:
    """Every stage's samples and tokens (v_run_summary counts first attempts only)."""
    _, ((n, prompt, completion, calls),) = store.query(
        "SELECT count(*), sum(prompt_tokens), sum(completion_tokens), "
        "count(DISTINCT call_id) FROM samples WHERE run_id = ?", [run_id])
    return {"samples": n, "prompt_tokens": prompt, "completion_tokens": completion, "model_calls": calls}
