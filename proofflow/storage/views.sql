-- proofflow's metric views and macros. storage/db.py runs this file after schema.sql
-- whenever a process opens the database for writing, so a file written by an older
-- version gets these definitions on its next run. Every statement is idempotent
-- (CREATE OR REPLACE). Columns and example queries: docs/sql.md.
--
-- Conventions shared by every view:
--   * "passed" means passed by the ground-truth verifier of the problem's kind
--     (v_truth_verifiers); other verifiers are audited against it, never trusted.
--   * A sample without a ground-truth verdict yet (still being verified) is not counted
--     as an attempt: it is neither a pass nor a failure.
--   * pass@k, coverage, maj@k and cost-of-pass count a run's candidates: the samples of
--     the stages its strategy names (proofflow/strategies/: `candidate_stages`, stored
--     per strategy in strategy_candidate_stages when a run starts; 'generate' for a run
--     whose strategy has no row), in idx order. The pf_* table macros take a list of
--     stages to count instead (NULL: each run's candidates).
--   * cost is NULL ("unknown") as soon as one counted row has no price; it is never
--     silently summed as 0. cost-of-pass is +inf when the cost is known but nothing passed.

-- Which verifier is ground truth for which problem kind; the lowest priority present wins
-- (a formal sample audited by formal_audit is judged by it, else by the plain Lean check).
CREATE OR REPLACE VIEW v_truth_verifiers AS
SELECT * FROM (VALUES
    ('answer', 'answer', 1),
    ('formal', 'formal_audit', 1),
    ('formal', 'lean', 2),
    ('formal', 'coq', 3)
) AS t(kind, verifier, priority);

-- Vote key for majority voting when the verifier did not store one: a light textual
-- normalisation (case, whitespace, $, \left/\right, \boxed{...}, \dfrac, trailing '.').
-- The answer verifier may store its own key in details.normalized; that one wins.
CREATE OR REPLACE MACRO pf_vote_key(a) AS
    CASE WHEN a IS NULL OR trim(a) = '' THEN NULL ELSE
        rtrim(
            regexp_replace(
                regexp_replace(
                    regexp_replace(
                        regexp_replace(lower(a), '\\boxed\{(.*)\}', '\1', 'g'),
                        '\\[dt]frac', '\\frac', 'g'),
                    '\\left|\\right|\\!|\\,|\\ |\$', '', 'g'),
                '\s+', '', 'g'),
            '.')
    END;

-- The unbiased pass@k estimator 1 - C(n-c, k) / C(n, k) (Chen et al. 2021), without
-- factorials: the ratio is a product of min(c, k) factors, either
--   prod_{j=n-c+1..n} (1 - k/j)   or   prod_{i=0..k-1} (1 - c/(n-i)),
-- each in (0, 1], so nothing overflows and a tiny pass@k keeps its digits (the log-space
-- form exp(lgamma(..)) loses ~1e-8 relative there: DuckDB has no expm1). Past 1000 factors
-- both c and k are large, the ratio is ~0 and lgamma is exact enough.
-- The edge cases are exact; NULL when k is outside 1..n.
CREATE OR REPLACE MACRO pf_pass_at_k(n, c, k) AS
    CASE
        WHEN n IS NULL OR c IS NULL OR k IS NULL OR k < 1 OR k > n THEN NULL
        WHEN c <= 0 THEN 0.0
        WHEN n - c < k THEN 1.0
        WHEN c <= k AND c <= 1000 THEN
            1.0 - list_product(list_transform(range(n - c + 1, n + 1), lambda j: 1.0 - k / j))
        WHEN k < c AND k <= 1000 THEN
            1.0 - list_product(list_transform(range(0, k), lambda i: 1.0 - c / (n - i)))
        ELSE 1.0 - exp(lgamma(n - c + 1) - lgamma(n - c - k + 1)
                       - lgamma(n + 1) + lgamma(n - k + 1))
    END;

-- Every (run, problem) a run covers: run_problems, plus any problem it has samples for.
-- source_id is the id this run's file gives the problem (NULL for runs stored before
-- run_problems had it: then problems.source_id, the first file's, is all there is).
CREATE OR REPLACE VIEW v_run_problem_ids AS
SELECT run_id, problem_id, min(position) AS position, any_value(source_id) AS source_id
FROM (
    SELECT run_id, problem_id, position, source_id FROM run_problems
    UNION ALL
    SELECT DISTINCT run_id, problem_id, NULL::INTEGER, NULL::VARCHAR FROM samples
)
GROUP BY run_id, problem_id;

-- Which stages' samples are a strategy's candidates (what pass@k counts), by the label
-- runs.strategy stores; filled from the strategy registry when a run starts
-- (storage/metrics.py, record_candidate_stages). A table the views read, so a strategy
-- added through the entry point group needs no change here.
CREATE TABLE IF NOT EXISTS strategy_candidate_stages (
    strategy VARCHAR NOT NULL,
    stage VARCHAR NOT NULL,
    PRIMARY KEY (strategy, stage)
);

-- Per run, the stages whose samples are its candidates.
CREATE OR REPLACE VIEW v_run_candidate_stages AS
SELECT r.run_id, coalesce(list(c.stage ORDER BY c.stage) FILTER (WHERE c.stage IS NOT NULL), ['generate']) AS stages
FROM runs r
LEFT JOIN strategy_candidate_stages c ON c.strategy = r.strategy
GROUP BY r.run_id;

-- One row per sample with its ground-truth verdict and vote key.
CREATE OR REPLACE VIEW v_sample_truth AS
WITH truth AS (
    SELECT v.sample_id, v.verifier, v.outcome, v.answer, v.details
    FROM verdicts v
    JOIN samples s USING (sample_id)
    LEFT JOIN problems p ON p.problem_id = s.problem_id
    JOIN v_truth_verifiers g ON g.verifier = v.verifier AND g.kind = coalesce(p.kind, 'answer')
    QUALIFY row_number() OVER (PARTITION BY v.sample_id ORDER BY g.priority) = 1
)
SELECT s.run_id, s.problem_id, s.sample_id, s.stage, s.round, s.idx, s.parent_id, s.model,
       s.prompt_tokens, s.completion_tokens, s.cost, s.created_at,
       t.verifier AS truth_verifier,
       t.outcome AS truth_outcome,
       t.outcome IS NOT NULL AS judged,
       coalesce(t.outcome = 'pass', false) AS passed,
       t.answer,
       coalesce(json_extract_string(t.details, '$.normalized'), pf_vote_key(t.answer)) AS vote_key,
       list_contains(coalesce(rc.stages, ['generate']), s.stage) AS candidate
FROM samples s
LEFT JOIN truth t USING (sample_id)
LEFT JOIN v_run_candidate_stages rc ON rc.run_id = s.run_id;

-- Per-problem outcome of a run.
CREATE OR REPLACE VIEW v_problem_outcomes AS
SELECT rp.run_id, rp.problem_id, rp.position, coalesce(rp.source_id, p.source_id) AS source_id,
       p.kind, p.reference_answer,
       count(st.sample_id) AS samples,
       count(st.sample_id) FILTER (WHERE st.candidate) AS generate_samples,
       count(st.sample_id) FILTER (WHERE st.judged) AS judged,
       count(st.sample_id) FILTER (WHERE st.passed) AS passed,
       count(st.sample_id) FILTER (WHERE st.candidate AND st.passed) AS generate_passed,
       first(st.sample_id ORDER BY st.round, st.idx, st.created_at)
           FILTER (WHERE st.passed) AS first_pass_sample_id,
       first(st.stage ORDER BY st.round, st.idx, st.created_at)
           FILTER (WHERE st.passed) AS first_pass_stage,
       min(st.round) FILTER (WHERE st.passed) AS first_pass_round,
       coalesce(sum(st.prompt_tokens), 0) AS prompt_tokens,
       coalesce(sum(st.completion_tokens), 0) AS completion_tokens,
       CASE WHEN count(st.sample_id) FILTER (WHERE st.cost IS NULL) = 0
            THEN coalesce(sum(st.cost), 0.0) END AS cost,
       any_value(r.selected_answer) AS selected_answer,
       any_value(r.correct) AS correct,
       coalesce(any_value(r.solved), count(st.sample_id) FILTER (WHERE st.passed) > 0) AS solved,
       any_value(r.problem_id) IS NOT NULL AS done
FROM v_run_problem_ids rp
LEFT JOIN problems p ON p.problem_id = rp.problem_id
LEFT JOIN v_sample_truth st ON st.run_id = rp.run_id AND st.problem_id = rp.problem_id
LEFT JOIN results r ON r.run_id = rp.run_id AND r.problem_id = rp.problem_id
GROUP BY rp.run_id, rp.problem_id, rp.position, rp.source_id, p.source_id, p.kind, p.reference_answer;

-- n judged and c passed attempts per (run, problem), counting the given stages.
CREATE OR REPLACE MACRO pf_attempts(stages) AS TABLE
SELECT run_id, problem_id,
       count(*)::BIGINT AS n,
       count(*) FILTER (WHERE passed)::BIGINT AS c
FROM v_sample_truth
WHERE judged AND CASE WHEN stages IS NULL THEN candidate ELSE list_contains(stages, stage) END
GROUP BY run_id, problem_id;

-- pass@k for every k in 1..n, per problem.
CREATE OR REPLACE MACRO pf_pass_at_k_problem(stages) AS TABLE
SELECT run_id, problem_id, n, c, k, pf_pass_at_k(n, c, k) AS pass_at_k
FROM (SELECT run_id, problem_id, n, c, unnest(range(1, n + 1)) AS k FROM pf_attempts(stages));

-- pass@k averaged over the problems that have at least k attempts.
CREATE OR REPLACE MACRO pf_pass_at_k_run(stages) AS TABLE
SELECT run_id, k, count(*) AS problems, avg(pass_at_k) AS pass_at_k
FROM pf_pass_at_k_problem(stages)
GROUP BY run_id, k;

CREATE OR REPLACE VIEW v_pass_at_k_problem AS SELECT * FROM pf_pass_at_k_problem(NULL);
CREATE OR REPLACE VIEW v_pass_at_k AS SELECT * FROM pf_pass_at_k_run(NULL);

-- Judged first-attempt samples ranked 1..n per problem in idx order: the order in which
-- "the first k samples" are taken for coverage and maj@k.
CREATE OR REPLACE VIEW v_ranked_attempts AS
SELECT run_id, problem_id, sample_id, idx, passed, answer, vote_key,
       row_number() OVER (PARTITION BY run_id, problem_id ORDER BY idx, sample_id) AS rank
FROM v_sample_truth
WHERE judged AND candidate;

-- Observed coverage: the fraction of the run's problems solved by one of their first k
-- samples (denominator: every problem of the run, attempted or not), next to the pass@k
-- estimate for the same k.
CREATE OR REPLACE VIEW v_coverage AS
WITH per_problem AS (
    SELECT run_id, problem_id, max(rank) AS n, min(rank) FILTER (WHERE passed) AS first_pass
    FROM v_ranked_attempts GROUP BY run_id, problem_id
),
totals AS (SELECT run_id, count(*) AS problems FROM v_run_problem_ids GROUP BY run_id),
ks AS (SELECT run_id, unnest(range(1, max(n) + 1)) AS k FROM per_problem GROUP BY run_id)
SELECT ks.run_id, ks.k, t.problems,
       count(pp.problem_id) AS solved,
       count(pp.problem_id) / t.problems AS coverage,
       any_value(pk.pass_at_k) AS pass_at_k
FROM ks
JOIN totals t ON t.run_id = ks.run_id
LEFT JOIN per_problem pp ON pp.run_id = ks.run_id AND pp.first_pass <= ks.k
LEFT JOIN v_pass_at_k pk ON pk.run_id = ks.run_id AND pk.k = ks.k
GROUP BY ks.run_id, ks.k, t.problems;

-- Majority vote over the first k attempts of each problem for k in 1..min(kmax, n)
-- (kmax NULL: up to n); last_only keeps only k = min(kmax, n), which is cheap.
-- Samples without an answer count towards k but do not vote; ties go to the answer seen
-- first (as tasks/select.py does); the vote is correct when that answer's first sample
-- passed the ground truth. No votes at all: not correct.
CREATE OR REPLACE MACRO pf_maj_at_k_problem(kmax, last_only) AS TABLE
WITH n AS (
    SELECT run_id, problem_id, max(rank) AS n FROM v_ranked_attempts GROUP BY run_id, problem_id
),
ks AS (
    SELECT run_id, problem_id, n,
           unnest(CASE WHEN last_only THEN [least(n, coalesce(kmax, n))]
                       ELSE range(1, least(n, coalesce(kmax, n)) + 1) END) AS k
    FROM n
),
votes AS (
    SELECT ks.run_id, ks.problem_id, ks.k, r.vote_key,
           count(*) AS votes, min(r.rank) AS first_rank,
           arg_min(r.passed, r.rank) AS passed, arg_min(r.answer, r.rank) AS answer
    FROM ks
    JOIN v_ranked_attempts r
      ON r.run_id = ks.run_id AND r.problem_id = ks.problem_id AND r.rank <= ks.k
    WHERE r.vote_key IS NOT NULL
    GROUP BY ks.run_id, ks.problem_id, ks.k, r.vote_key
),
best AS (
    SELECT * FROM votes
    QUALIFY row_number() OVER (PARTITION BY run_id, problem_id, k ORDER BY votes DESC, first_rank) = 1
)
SELECT ks.run_id, ks.problem_id, ks.n, ks.k,
       b.answer AS majority_answer, b.vote_key, coalesce(b.votes, 0) AS votes,
       coalesce(b.passed, false) AS correct
FROM ks
LEFT JOIN best b ON b.run_id = ks.run_id AND b.problem_id = ks.problem_id AND b.k = ks.k;

CREATE OR REPLACE VIEW v_maj_at_k_problem AS SELECT * FROM pf_maj_at_k_problem(NULL, false);

-- maj@k averaged over the problems with at least k attempts.
CREATE OR REPLACE VIEW v_maj_at_k AS
SELECT run_id, k, count(*) AS problems, avg(correct::INTEGER) AS maj_at_k
FROM v_maj_at_k_problem
GROUP BY run_id, k;

-- Tokens and cost by run, stage and model. A run that records its model calls (calls
-- table) is counted from there, failed and retried calls included; a run without call
-- rows falls back to its samples. `unpriced` counts rows with tokens but no price.
CREATE OR REPLACE VIEW v_usage AS
WITH call_runs AS (SELECT DISTINCT run_id FROM calls),
sample_counts AS (
    SELECT run_id, stage, model, count(*) AS samples FROM samples GROUP BY ALL
),
from_calls AS (
    SELECT run_id, coalesce(stage, '?') AS stage, model, 'calls' AS source,
           count(*) AS calls,
           count(*) FILTER (WHERE status <> 'ok') AS failed_calls,
           coalesce(sum(prompt_tokens), 0) AS prompt_tokens,
           coalesce(sum(completion_tokens), 0) AS completion_tokens,
           sum(cost) AS priced_cost,
           count(*) FILTER (WHERE cost IS NULL
               AND coalesce(prompt_tokens, 0) + coalesce(completion_tokens, 0) > 0) AS unpriced
    FROM calls WHERE run_id IS NOT NULL GROUP BY ALL
),
from_samples AS (
    SELECT run_id, stage, model, 'samples' AS source,
           NULL::BIGINT AS calls, NULL::BIGINT AS failed_calls,
           coalesce(sum(prompt_tokens), 0) AS prompt_tokens,
           coalesce(sum(completion_tokens), 0) AS completion_tokens,
           sum(cost) AS priced_cost,
           count(*) FILTER (WHERE cost IS NULL) AS unpriced
    FROM samples WHERE run_id NOT IN (SELECT run_id FROM call_runs) GROUP BY ALL
),
combined AS (SELECT * FROM from_calls UNION ALL SELECT * FROM from_samples)
SELECT c.run_id, c.stage, c.model, c.source, c.calls, c.failed_calls,
       coalesce(sc.samples, 0) AS samples,
       c.prompt_tokens, c.completion_tokens, c.prompt_tokens + c.completion_tokens AS tokens,
       CASE WHEN c.unpriced = 0 THEN coalesce(c.priced_cost, 0.0) END AS cost,
       c.unpriced
FROM combined c
LEFT JOIN sample_counts sc
  ON sc.run_id = c.run_id AND sc.stage = c.stage AND sc.model IS NOT DISTINCT FROM c.model;

-- Run totals of v_usage.
CREATE OR REPLACE VIEW v_run_usage AS
SELECT run_id, any_value(source) AS source, sum(calls) AS calls, sum(failed_calls) AS failed_calls,
       sum(samples) AS samples, sum(prompt_tokens) AS prompt_tokens,
       sum(completion_tokens) AS completion_tokens, sum(tokens) AS tokens,
       CASE WHEN sum(unpriced) = 0 THEN sum(cost) END AS cost, sum(unpriced) AS unpriced
FROM v_usage GROUP BY run_id;

-- Cost-of-pass per (run, model) at the sample level: the mean cost of one first attempt
-- divided by the pooled rate at which first attempts pass (E[cost] / E[success]).
-- NULL when any counted attempt is unpriced; +inf when priced but none passed.
CREATE OR REPLACE VIEW v_cost_of_pass_by_model AS
SELECT run_id, model,
       count(*) AS attempts,
       count(*) FILTER (WHERE passed) AS passed,
       count(*) FILTER (WHERE passed) / count(*) AS success_rate,
       CASE WHEN count(*) FILTER (WHERE cost IS NULL) = 0 THEN avg(cost) END AS attempt_cost,
       CASE WHEN count(*) FILTER (WHERE cost IS NULL) > 0 THEN NULL
            WHEN count(*) FILTER (WHERE passed) = 0 THEN 'inf'::DOUBLE
            ELSE avg(cost) / (count(*) FILTER (WHERE passed) / count(*)) END AS cost_of_pass
FROM v_sample_truth
WHERE judged AND candidate
GROUP BY run_id, model;

-- What v_cost_of_pass and v_tokens_of_pass both count, one row per run: its judged first
-- attempts (all models: attempts, passed, unpriced, mean cost, mean tokens; NULL when it
-- has none) and its finished problems (problems_done, correct; NULL when none). A sample
-- whose server reported no token counts adds 0 tokens.
CREATE OR REPLACE VIEW v_run_attempts AS
WITH attempts AS (
    SELECT run_id,
           count(*) AS attempts,
           count(*) FILTER (WHERE passed) AS passed,
           count(*) FILTER (WHERE cost IS NULL) AS unpriced,
           avg(cost) AS mean_cost,
           avg(coalesce(prompt_tokens, 0) + coalesce(completion_tokens, 0)) AS mean_tokens
    FROM v_sample_truth WHERE judged AND candidate GROUP BY run_id
),
res AS (
    SELECT run_id, count(*) AS problems_done, count(*) FILTER (WHERE correct) AS correct
    FROM results GROUP BY run_id
),
ids AS (SELECT run_id FROM v_run_problem_ids UNION SELECT run_id FROM results)
SELECT ids.run_id, a.attempts, a.passed, a.unpriced, a.mean_cost, a.mean_tokens, r.problems_done, r.correct
FROM (SELECT DISTINCT run_id FROM ids) ids
LEFT JOIN attempts a ON a.run_id = ids.run_id
LEFT JOIN res r ON r.run_id = ids.run_id;

-- Cost-of-pass per run, two ways:
--   cost_of_pass: per first attempt, as in v_cost_of_pass_by_model but over all models;
--   cost_of_pass_run: the whole pipeline (every call, repairs and verification included)
--     per problem, divided by the fraction of finished problems whose selected answer is
--     correct = total cost / correct problems.
CREATE OR REPLACE VIEW v_cost_of_pass AS
SELECT a.run_id,
       coalesce(a.attempts, 0) AS attempts,
       coalesce(a.passed, 0) AS passed,
       a.passed / a.attempts AS success_rate,
       CASE WHEN a.unpriced = 0 THEN a.mean_cost END AS attempt_cost,
       CASE WHEN a.attempts IS NULL OR a.unpriced > 0 THEN NULL
            WHEN a.passed = 0 THEN 'inf'::DOUBLE
            ELSE a.mean_cost / (a.passed / a.attempts) END AS cost_of_pass,
       coalesce(a.problems_done, 0) AS problems_done,
       coalesce(a.correct, 0) AS correct,
       a.correct / a.problems_done AS accuracy,
       u.cost AS total_cost,
       u.cost / a.problems_done AS cost_per_problem,
       CASE WHEN u.cost IS NULL OR a.problems_done IS NULL THEN NULL
            WHEN a.correct = 0 THEN 'inf'::DOUBLE
            ELSE u.cost / a.correct END AS cost_of_pass_run
FROM v_run_attempts a
LEFT JOIN v_run_usage u ON u.run_id = a.run_id;

-- Tokens-of-pass: cost-of-pass counted in tokens (prompt + completion), known without
-- any price, so runs are comparable across hardware and unpriced runs still get a figure.
-- Per (run, model) over first attempts: the mean tokens of one first attempt divided by
-- the share of first attempts that pass; +inf when none passed. A sample whose server
-- reported no token counts adds 0.
CREATE OR REPLACE VIEW v_tokens_of_pass_by_model AS
SELECT run_id, model,
       count(*) AS attempts,
       count(*) FILTER (WHERE passed) AS passed,
       count(*) FILTER (WHERE passed) / count(*) AS success_rate,
       avg(coalesce(prompt_tokens, 0) + coalesce(completion_tokens, 0)) AS attempt_tokens,
       CASE WHEN count(*) FILTER (WHERE passed) = 0 THEN 'inf'::DOUBLE
            ELSE avg(coalesce(prompt_tokens, 0) + coalesce(completion_tokens, 0))
                 / (count(*) FILTER (WHERE passed) / count(*)) END AS tokens_of_pass
FROM v_sample_truth
WHERE judged AND candidate
GROUP BY run_id, model;

-- Tokens-of-pass per run, the two ways of v_cost_of_pass:
--   tokens_of_pass: per first attempt, over all models;
--   tokens_per_correct: every token the run spent (v_run_usage: all stages, failed calls
--     included) divided by the problems whose selected answer is correct; +inf when none.
CREATE OR REPLACE VIEW v_tokens_of_pass AS
SELECT a.run_id,
       coalesce(a.attempts, 0) AS attempts,
       coalesce(a.passed, 0) AS passed,
       a.mean_tokens AS attempt_tokens,
       CASE WHEN a.attempts IS NULL THEN NULL
            WHEN a.passed = 0 THEN 'inf'::DOUBLE
            ELSE a.mean_tokens / (a.passed / a.attempts) END AS tokens_of_pass,
       coalesce(a.problems_done, 0) AS problems_done,
       coalesce(a.correct, 0) AS correct,
       coalesce(u.tokens, 0) AS total_tokens,
       CASE WHEN a.problems_done IS NULL THEN NULL
            WHEN a.correct = 0 THEN 'inf'::DOUBLE
            ELSE coalesce(u.tokens, 0) / a.correct END AS tokens_per_correct
FROM v_run_attempts a
LEFT JOIN v_run_usage u ON u.run_id = a.run_id;

-- For every pair of verifiers that judged the same samples: the 2x2 table of
-- pass / not-pass (fail, error and timeout are all "not pass") and their agreement.
CREATE OR REPLACE VIEW v_verifier_agreement AS
SELECT s.run_id, a.verifier AS verifier_a, b.verifier AS verifier_b,
       count(*) AS samples,
       count(*) FILTER (WHERE a.outcome = 'pass' AND b.outcome = 'pass') AS both_pass,
       count(*) FILTER (WHERE a.outcome = 'pass' AND b.outcome <> 'pass') AS a_pass_b_not,
       count(*) FILTER (WHERE a.outcome <> 'pass' AND b.outcome = 'pass') AS b_pass_a_not,
       count(*) FILTER (WHERE a.outcome <> 'pass' AND b.outcome <> 'pass') AS neither_pass,
       count(*) FILTER (WHERE (a.outcome = 'pass') = (b.outcome = 'pass')) / count(*) AS agreement
FROM verdicts a
JOIN verdicts b ON b.sample_id = a.sample_id AND a.verifier < b.verifier
JOIN samples s ON s.sample_id = a.sample_id
GROUP BY s.run_id, a.verifier, b.verifier;

-- Each non-ground-truth verifier against the ground truth of the same samples.
-- false_accept_rate = false accepts / ground-truth non-passes (NULL when there are none).
CREATE OR REPLACE VIEW v_verifier_audit AS
SELECT t.run_id, v.verifier, t.truth_verifier,
       count(*) AS samples,
       count(*) FILTER (WHERE v.outcome = 'pass' AND t.passed) AS true_accept,
       count(*) FILTER (WHERE v.outcome = 'pass' AND NOT t.passed) AS false_accept,
       count(*) FILTER (WHERE v.outcome <> 'pass' AND t.passed) AS false_reject,
       count(*) FILTER (WHERE v.outcome <> 'pass' AND NOT t.passed) AS true_reject,
       count(*) FILTER (WHERE v.outcome IN ('error', 'timeout')) AS errors,
       count(*) FILTER (WHERE v.outcome = 'pass' AND NOT t.passed)
           / nullif(count(*) FILTER (WHERE NOT t.passed), 0) AS false_accept_rate,
       count(*) FILTER (WHERE v.outcome <> 'pass' AND t.passed)
           / nullif(count(*) FILTER (WHERE t.passed), 0) AS false_reject_rate,
       count(*) FILTER (WHERE v.outcome = 'pass' AND t.passed)
           / nullif(count(*) FILTER (WHERE v.outcome = 'pass'), 0) AS precision
FROM verdicts v
JOIN v_sample_truth t ON t.sample_id = v.sample_id
WHERE t.judged AND v.verifier <> t.truth_verifier
GROUP BY t.run_id, v.verifier, t.truth_verifier;

-- Why verdicts came out as they did: counts by (run, verifier, outcome, reason), e.g.
-- the formal audit's rejection reasons (verifiers/formal.py REJECTION_REASONS) or the
-- answer checker's no_answer / wrong_answer.
CREATE OR REPLACE VIEW v_verdict_reasons AS
SELECT s.run_id, v.verifier, v.outcome, coalesce(v.reason, '') AS reason,
       count(*) AS verdicts,
       count(*) / sum(count(*)) OVER (PARTITION BY s.run_id, v.verifier) AS share
FROM verdicts v
JOIN samples s USING (sample_id)
GROUP BY s.run_id, v.verifier, v.outcome, coalesce(v.reason, '');

-- The headline figures of each run: kept to per-problem aggregates (no expansion over k)
-- so that it stays cheap enough to compute at the end of every flow run.
CREATE OR REPLACE VIEW v_run_summary AS
WITH att AS (
    SELECT run_id, max(n) AS n,
           avg(c / n) AS pass_at_1,
           -- pass@N over problems with the run's full N attempts (the estimator at k = n)
           avg((c > 0)::INTEGER) AS pass_at_n
    FROM pf_attempts(NULL) GROUP BY run_id
),
maj AS (
    SELECT run_id, avg(correct::INTEGER) AS maj_at_n
    FROM pf_maj_at_k_problem(NULL, true) GROUP BY run_id
),
po AS (
    SELECT run_id, count(*) AS problems, count(*) FILTER (WHERE done) AS done,
           count(*) FILTER (WHERE solved) AS solved,
           count(*) FILTER (WHERE correct) AS correct
    FROM v_problem_outcomes GROUP BY run_id
)
SELECT r.run_id, r.name, r.strategy, r.model, r.status, r.started_at, r.finished_at,
       coalesce(po.problems, 0) AS problems, coalesce(po.done, 0) AS done,
       coalesce(po.solved, 0) AS solved, coalesce(po.correct, 0) AS correct,
       att.n, att.pass_at_1, att.pass_at_n, maj.maj_at_n,
       coalesce(u.samples, 0) AS samples,
       coalesce(u.prompt_tokens, 0) AS prompt_tokens,
       coalesce(u.completion_tokens, 0) AS completion_tokens,
       coalesce(u.tokens, 0) AS tokens,
       CASE WHEN u.run_id IS NULL THEN 0.0 ELSE u.cost END AS cost,
       cp.cost_of_pass, cp.cost_of_pass_run,
       tp.tokens_of_pass, tp.tokens_per_correct
FROM runs r
LEFT JOIN po ON po.run_id = r.run_id
LEFT JOIN att ON att.run_id = r.run_id
LEFT JOIN maj ON maj.run_id = r.run_id
LEFT JOIN v_run_usage u ON u.run_id = r.run_id
LEFT JOIN v_cost_of_pass cp ON cp.run_id = r.run_id
LEFT JOIN v_tokens_of_pass tp ON tp.run_id = r.run_id;

-- Step search: which tactics were tried on which state and what they did, one row per
-- tried tactic, with the goals it was tried on and the model that proposed it.
CREATE OR REPLACE VIEW v_search_tactics AS
SELECT n.run_id, r.name AS run_name, n.problem_id, n.origin, n.parent_node_id, p.goals AS parent_goals,
       n.depth, n.tactic, n.logprob, n.score, n.status, n.goals, n.error, n.merged_into,
       n.node_id, n.sample_id, s.model, s.completion_tokens
FROM search_nodes n
JOIN search_nodes p ON p.node_id = n.parent_node_id
LEFT JOIN samples s ON s.sample_id = n.sample_id
LEFT JOIN runs r ON r.run_id = n.run_id;

-- Reasoning models, per run: thinking tokens and their share of the completion tokens,
-- how many samples were counted inexactly, and how many stopped on length while still
-- thinking (budget_exhausted: no answer at all, not a wrong one).
CREATE OR REPLACE VIEW v_reasoning AS
SELECT run_id,
       count(*) FILTER (WHERE reasoning IS NOT NULL) AS thinking_samples,
       coalesce(sum(reasoning_tokens), 0) AS reasoning_tokens,
       coalesce(sum(completion_tokens), 0) AS completion_tokens,
       coalesce(sum(reasoning_tokens), 0) / nullif(sum(completion_tokens), 0) AS reasoning_share,
       count(*) FILTER (WHERE reasoning_tokens_source = 'apportioned') AS reasoning_inexact_samples,
       count(*) FILTER (WHERE budget_exhausted) AS budget_exhausted
FROM samples
WHERE call_id IS NOT NULL
GROUP BY run_id;

-- Agents (proofflow/agents/): one row per episode — its turns, tool calls (by tool,
-- refused ones apart), tokens (prompt tokens are re-sent context, counted per turn),
-- thinking, how it ended, and whether its candidate passed the ground-truth verifier.
CREATE OR REPLACE VIEW v_episodes AS
WITH turns AS (
    SELECT run_id, problem_id, idx AS episode, count(*) AS turns,
           coalesce(sum(prompt_tokens), 0) AS prompt_tokens,
           coalesce(sum(completion_tokens), 0) AS completion_tokens,
           coalesce(sum(reasoning_tokens), 0) AS reasoning_tokens,
           count(*) FILTER (WHERE budget_exhausted) AS budget_exhausted_turns,
           coalesce(sum(latency_s), 0.0) AS model_s,
           CASE WHEN count(*) FILTER (WHERE cost IS NULL) = 0 THEN coalesce(sum(cost), 0.0) END AS cost
    FROM samples WHERE stage = 'turn'
    GROUP BY run_id, problem_id, idx
), tools AS (
    SELECT run_id, problem_id, episode, count(*) AS tool_calls,
           count(*) FILTER (WHERE outcome = 'refused') AS refused_calls,
           histogram(tool) AS calls_by_tool,
           coalesce(sum(duration_s), 0.0) AS tool_s
    FROM tool_runs
    GROUP BY run_id, problem_id, episode
)
SELECT t.run_id, t.problem_id, coalesce(rp.source_id, p.source_id) AS source_id, t.episode, t.turns,
       coalesce(tl.tool_calls, 0) AS tool_calls, coalesce(tl.refused_calls, 0) AS refused_calls,
       tl.calls_by_tool, t.prompt_tokens, t.completion_tokens, t.reasoning_tokens,
       t.prompt_tokens + t.completion_tokens AS tokens,
       t.reasoning_tokens / nullif(t.completion_tokens, 0) AS reasoning_share,
       t.budget_exhausted_turns, t.model_s, coalesce(tl.tool_s, 0.0) AS tool_s, t.cost,
       e.ended, e.candidate_sample_id,
       coalesce(st.judged, false) AS judged, coalesce(st.passed, false) AS solved
FROM turns t
LEFT JOIN tools tl ON tl.run_id = t.run_id AND tl.problem_id = t.problem_id AND tl.episode = t.episode
LEFT JOIN episodes e ON e.run_id = t.run_id AND e.problem_id = t.problem_id AND e.episode = t.episode
LEFT JOIN v_sample_truth st ON st.sample_id = e.candidate_sample_id
LEFT JOIN run_problems rp ON rp.run_id = t.run_id AND rp.problem_id = t.problem_id
LEFT JOIN problems p ON p.problem_id = t.problem_id;

-- Agents per run: pass@1 over episodes (the mean of solved; pass@k over episodes is
-- pf_pass_at_k_run([candidate stage]) — an episode's candidate is one attempt),
-- turns-to-solve and tokens-to-solve (solved episodes), the reasoning share, how episodes
-- ended, budget_exhausted turns.
CREATE OR REPLACE VIEW v_agent_summary AS
SELECT run_id, count(*) AS episodes,
       count(*) FILTER (WHERE solved) AS solved_episodes,
       avg(solved::INTEGER) FILTER (WHERE judged) AS pass_at_1,
       avg(turns) AS turns_per_episode,
       avg(turns) FILTER (WHERE solved) AS turns_to_solve,
       avg(tokens) FILTER (WHERE solved) AS tokens_to_solve,
       sum(tool_calls) AS tool_calls, sum(refused_calls) AS refused_calls,
       sum(prompt_tokens) AS prompt_tokens, sum(completion_tokens) AS completion_tokens,
       sum(reasoning_tokens) / nullif(sum(completion_tokens), 0) AS reasoning_share,
       sum(budget_exhausted_turns) AS budget_exhausted,
       histogram(ended) AS ended
FROM v_episodes
GROUP BY run_id;

-- The per-problem token budget, per run: problems whose budget stopped their repairs
-- ([solve] max_tokens_per_problem: results.stopped_by) and agent episodes that ended on it
-- ([solve.tir] / [prove.agent] max_tokens_per_problem). Runs with neither have no row.
CREATE OR REPLACE VIEW v_token_budget AS
WITH problems AS (
    SELECT run_id, count(*) AS problems_stopped FROM results WHERE stopped_by = 'token_budget' GROUP BY run_id
), eps AS (
    SELECT run_id, count(*) AS episodes_stopped FROM episodes WHERE ended = 'token_budget' GROUP BY run_id
)
SELECT coalesce(p.run_id, e.run_id) AS run_id, coalesce(p.problems_stopped, 0) AS problems_stopped,
       coalesce(e.episodes_stopped, 0) AS episodes_stopped
FROM problems p FULL OUTER JOIN eps e ON e.run_id = p.run_id;

INSERT OR REPLACE INTO schema_info VALUES ('views_version', '9');
