-- proofflow's DuckDB schema. Every statement is idempotent; storage/db.py runs this file
-- on open and records SCHEMA_VERSION. Columns are documented in docs/storage.md.

CREATE TABLE IF NOT EXISTS schema_info (
    key VARCHAR PRIMARY KEY,
    value VARCHAR
);

CREATE TABLE IF NOT EXISTS runs (
    run_id VARCHAR PRIMARY KEY,
    name VARCHAR NOT NULL UNIQUE,
    strategy VARCHAR NOT NULL,
    problem_set VARCHAR,
    model VARCHAR,
    config JSON,
    config_hash VARCHAR,
    code_version VARCHAR,
    status VARCHAR,             -- running | completed | failed
    started_at TIMESTAMP,
    finished_at TIMESTAMP
);

CREATE TABLE IF NOT EXISTS problems (
    problem_id VARCHAR PRIMARY KEY,  -- content hash (keys.problem_id)
    source VARCHAR,                  -- the file it was first loaded from
    source_id VARCHAR,               -- the id it has in that file (per run: run_problems)
    split VARCHAR,
    kind VARCHAR NOT NULL,           -- answer | formal
    statement VARCHAR,
    formal_statement VARCHAR,
    header VARCHAR,
    reference_answer VARCHAR,
    metadata JSON
);

-- Which problems a run covers, in order, with the id and metadata this run's file gives
-- them (`problems` keeps those of the first file that had the problem).
CREATE TABLE IF NOT EXISTS run_problems (
    run_id VARCHAR NOT NULL,
    problem_id VARCHAR NOT NULL,
    position INTEGER,
    source_id VARCHAR,
    metadata JSON,
    PRIMARY KEY (run_id, problem_id)
);
-- Files written before these columns existed.
ALTER TABLE run_problems ADD COLUMN IF NOT EXISTS source_id VARCHAR;
ALTER TABLE run_problems ADD COLUMN IF NOT EXISTS metadata JSON;

-- The problem file a run was started with, line by line: resuming with an edited file
-- is refused naming the lines that changed (problems/file_identity.py).
CREATE TABLE IF NOT EXISTS run_problem_lines (
    run_id VARCHAR NOT NULL,
    line INTEGER NOT NULL,
    digest VARCHAR NOT NULL,         -- hash of the line's JSON value (key order, spacing ignored)
    label VARCHAR,                   -- its id in the file, or "line N"
    content JSON,                    -- the value, keys sorted
    PRIMARY KEY (run_id, line)
);

-- Every request sent to a model server, including ones that failed or were retried.
CREATE TABLE IF NOT EXISTS calls (
    call_id VARCHAR PRIMARY KEY,
    run_id VARCHAR,
    problem_id VARCHAR,
    stage VARCHAR,
    endpoint VARCHAR,
    model VARCHAR,
    n INTEGER,
    seed BIGINT,
    attempt INTEGER,
    status VARCHAR,              -- ok | error
    error VARCHAR,
    prompt_tokens INTEGER,
    completion_tokens INTEGER,
    latency_s DOUBLE,
    cost DOUBLE,
    created_at TIMESTAMP
);

CREATE TABLE IF NOT EXISTS samples (
    sample_id VARCHAR PRIMARY KEY,   -- keys.sample_id(run, problem, stage, parent, idx)
    run_id VARCHAR NOT NULL,
    problem_id VARCHAR NOT NULL,
    stage VARCHAR NOT NULL,          -- generate | repair | draft | sketch | prove | ...
    parent_id VARCHAR,
    idx INTEGER NOT NULL,
    round INTEGER NOT NULL,          -- 0 for generate, r for the r-th repair round
    call_id VARCHAR,
    model VARCHAR,
    endpoint VARCHAR,
    params JSON,                     -- sampling parameters as sent
    seed BIGINT,
    prompt VARCHAR,
    completion VARCHAR,
    finish_reason VARCHAR,
    prompt_tokens INTEGER,
    completion_tokens INTEGER,
    tokens_exact BOOLEAN,            -- false when per-sample tokens were apportioned from a batched call
    latency_s DOUBLE,
    cost DOUBLE,                     -- NULL when no price is configured
    created_at TIMESTAMP
);

-- A reasoning model's thinking, kept apart from `completion` (the answer: extraction and
-- voting read only that) and counted; files written before these columns existed open.
ALTER TABLE samples ADD COLUMN IF NOT EXISTS reasoning VARCHAR;
ALTER TABLE samples ADD COLUMN IF NOT EXISTS reasoning_tokens INTEGER;
ALTER TABLE samples ADD COLUMN IF NOT EXISTS reasoning_tokens_source VARCHAR;  -- usage | tokenize | apportioned (inexact)
ALTER TABLE samples ADD COLUMN IF NOT EXISTS budget_exhausted BOOLEAN;         -- stopped on length inside the thinking
ALTER TABLE samples ADD COLUMN IF NOT EXISTS tool_calls JSON;                  -- an agent turn's tool calls as returned

-- Agents (proofflow/agents/): each turn is a sample (stage 'turn', idx = episode,
-- round = turn, parent = the previous turn); each tool call it made is a tool run.
CREATE TABLE IF NOT EXISTS tool_runs (
    tool_run_id VARCHAR PRIMARY KEY,
    run_id VARCHAR NOT NULL,
    problem_id VARCHAR NOT NULL,
    sample_id VARCHAR NOT NULL,      -- the turn that asked for it
    episode INTEGER NOT NULL,
    turn INTEGER NOT NULL,
    call_index INTEGER NOT NULL,
    tool_call_id VARCHAR,
    tool VARCHAR NOT NULL,
    input VARCHAR,
    output VARCHAR,                  -- what went back to the model
    outcome VARCHAR NOT NULL,        -- ok | error | pass | fail | timeout | refused
    error VARCHAR,
    details JSON,
    duration_s DOUBLE,
    created_at TIMESTAMP
);

-- How each agent episode ended (written once it has).
CREATE TABLE IF NOT EXISTS episodes (
    run_id VARCHAR NOT NULL,
    problem_id VARCHAR NOT NULL,
    episode INTEGER NOT NULL,
    turns INTEGER,
    tool_calls INTEGER,
    ended VARCHAR NOT NULL,          -- answered | proved | max_turns | token_budget | wall_time | budget_exhausted | context_length | model_error
    final_sample_id VARCHAR,
    candidate_sample_id VARCHAR,
    created_at TIMESTAMP,
    PRIMARY KEY (run_id, problem_id, episode)
);

CREATE TABLE IF NOT EXISTS verdicts (
    sample_id VARCHAR NOT NULL,
    verifier VARCHAR NOT NULL,
    verifier_version VARCHAR,
    run_id VARCHAR,
    problem_id VARCHAR,
    outcome VARCHAR NOT NULL,        -- pass | fail | error | timeout
    reason VARCHAR,
    answer VARCHAR,
    feedback VARCHAR,
    details JSON,
    duration_s DOUBLE,
    created_at TIMESTAMP,
    PRIMARY KEY (sample_id, verifier)
);

-- The selected answer per (run, problem): written last, so its presence means "done".
CREATE TABLE IF NOT EXISTS results (
    run_id VARCHAR NOT NULL,
    problem_id VARCHAR NOT NULL,
    selection VARCHAR,               -- majority | first_verified | ...
    selected_answer VARCHAR,
    selected_sample_id VARCHAR,
    correct BOOLEAN,                 -- the selected answer checked against the reference
    solved BOOLEAN,                  -- any sample of the problem passed
    n_samples INTEGER,
    n_passed INTEGER,
    created_at TIMESTAMP,
    PRIMARY KEY (run_id, problem_id)
);
ALTER TABLE results ADD COLUMN IF NOT EXISTS stopped_by VARCHAR;  -- token_budget: [solve] max_tokens_per_problem stopped its repairs

-- Formal checker results by (checker + version, header hash, statement + source hash),
-- so the same proof is never checked twice, across runs (storage/check_cache.py).
CREATE TABLE IF NOT EXISTS check_cache (
    checker VARCHAR NOT NULL,        -- backend + version, e.g. "coq 8.16.1"
    header_hash VARCHAR NOT NULL,
    source_hash VARCHAR NOT NULL,
    status VARCHAR NOT NULL,         -- complete | incomplete | error | rejected
    result JSON NOT NULL,            -- the CheckResult
    created_at TIMESTAMP,
    PRIMARY KEY (checker, header_hash, source_hash)
);

-- A completion's log-probability (sum over its tokens) when the stage asked for it: the
-- step search's tactic priority (proofflow/search/).
ALTER TABLE samples ADD COLUMN IF NOT EXISTS logprob DOUBLE;

-- A step search's tree (proofflow/search/, docs/proving.md "Tactic-level proving"): the
-- root state of each goal searched, and every tactic tried on a state with what it did
-- (the new state's goals, or the error). The tactic's expansion sample is a `samples` row
-- (stage 'search') whose parent_id is the node it expanded.
CREATE TABLE IF NOT EXISTS search_nodes (
    node_id VARCHAR PRIMARY KEY,
    run_id VARCHAR NOT NULL,
    problem_id VARCHAR NOT NULL,
    origin VARCHAR NOT NULL,         -- theorem | <sketch sample id>#<hole>
    parent_node_id VARCHAR,          -- NULL for the root state
    sample_id VARCHAR,               -- the expansion sample that proposed the tactic
    tactic VARCHAR,
    depth INTEGER NOT NULL,
    logprob DOUBLE,
    score DOUBLE,                    -- priority of the resulting state
    status VARCHAR NOT NULL,         -- root | open | proved | error | duplicate | timeout | crash
    goals JSON,                      -- the resulting state's goals
    error VARCHAR,
    merged_into VARCHAR,             -- duplicate: the node with the same goals
    created_at TIMESTAMP
);
