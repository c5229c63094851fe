"""A run's headline figures in one query: what `proofflow show` and the flow's final
Prefect artifact display."""

from __future__ import annotations

from typing import Any

from proofflow.storage.db import Store

_SUMMARY_SQL = """
WITH per_problem AS (
    SELECT rp.problem_id,
           count(s.sample_id) FILTER (WHERE s.stage = 'generate') AS n,
           count(s.sample_id) FILTER (WHERE s.stage = 'generate' AND v.outcome = 'pass') AS c,
           coalesce(sum(s.prompt_tokens), 0) AS prompt_tokens,
           coalesce(sum(s.completion_tokens), 0) AS completion_tokens,
           sum(s.cost) AS cost,
           count(s.sample_id) FILTER (WHERE s.cost IS NULL) AS unpriced
    FROM run_problems rp
    LEFT JOIN samples s ON s.run_id = rp.run_id AND s.problem_id = rp.problem_id
    LEFT JOIN verdicts v ON v.sample_id = s.sample_id AND v.verifier = 'answer'
    WHERE rp.run_id = $run
    GROUP BY rp.problem_id
)
SELECT
    (SELECT count(*) FROM per_problem) AS problems,
    (SELECT count(*) FROM results WHERE run_id = $run) AS done,
    (SELECT count(*) FROM results WHERE run_id = $run AND solved) AS solved,
    (SELECT count(*) FROM results WHERE run_id = $run AND correct) AS majority_correct,
    (SELECT avg(CASE WHEN n > 0 THEN c / n END) FROM per_problem) AS pass_at_1,
    (SELECT avg(CASE WHEN n > 0 THEN (c > 0)::INT END) FROM per_problem) AS pass_at_n,
    (SELECT max(n) FROM per_problem) AS n,
    (SELECT count(*) FROM samples WHERE run_id = $run) AS samples,
    (SELECT sum(prompt_tokens) FROM per_problem) AS prompt_tokens,
    (SELECT sum(completion_tokens) FROM per_problem) AS completion_tokens,
    (SELECT CASE WHEN sum(unpriced) = 0 THEN sum(cost) END FROM per_problem) AS cost,
    (SELECT count(*) FROM calls WHERE run_id = $run AND status = 'error') AS failed_calls
"""


def run_summary(store: Store, run_id: str) -> dict[str, Any]:
    """Solved / total, pass@1 and pass@N over the first-attempt samples, majority-vote
    accuracy, tokens and cost (None when any sample is unpriced)."""
    cols, rows = store.query(_SUMMARY_SQL, {"run": run_id})
    return dict(zip(cols, rows[0]))


_PER_PROBLEM_SQL = """
SELECT p.source_id, p.reference_answer, r.selected_answer, r.correct,
       count(s.sample_id) AS samples,
       count(s.sample_id) FILTER (WHERE v.outcome = 'pass') AS passed,
       sum(coalesce(s.prompt_tokens, 0) + coalesce(s.completion_tokens, 0)) AS tokens,
       CASE WHEN count(s.sample_id) FILTER (WHERE s.cost IS NULL) = 0 THEN sum(s.cost) END AS cost
FROM run_problems rp
JOIN problems p USING (problem_id)
LEFT JOIN results r ON r.run_id = rp.run_id AND r.problem_id = rp.problem_id
LEFT JOIN samples s ON s.run_id = rp.run_id AND s.problem_id = rp.problem_id
LEFT JOIN verdicts v ON v.sample_id = s.sample_id AND v.verifier = 'answer'
WHERE rp.run_id = $run
GROUP BY ALL
ORDER BY min(rp.position)
"""


def per_problem(store: Store, run_id: str) -> list[dict[str, Any]]:
    cols, rows = store.query(_PER_PROBLEM_SQL, {"run": run_id})
    return [dict(zip(cols, r)) for r in rows]
