"""Row types written to and read from DuckDB.

Plain dataclasses, so tasks can build rows without importing duckdb. Field names are
the column names in storage/schema.sql.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


@dataclass
class Row:
    table: ClassVar[str] = ""
    # The table's primary key, stated here once: the bulk insert dedupes a batch by it and
    # tests/storage/test_primary_keys.py holds schema.sql to it.
    primary_key: ClassVar[tuple[str, ...]] = ()

    def as_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in _field_names(type(self))}

    @classmethod
    def columns(cls) -> list[str]:
        return list(_field_names(cls))


_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


def _field_names(cls: type) -> tuple[str, ...]:
    """A row class's field names, in order (dataclasses.fields() rebuilds them at each
    call: a few µs a row, on every journaled and written row)."""
    names = _FIELD_NAMES.get(cls)
    if names is None:
        names = _FIELD_NAMES[cls] = tuple(f.name for f in dataclasses.fields(cls))
    return names


@dataclass
class RunRow(Row):
    table: ClassVar[str] = "runs"
    primary_key: ClassVar[tuple[str, ...]] = ("run_id",)
    run_id: str
    name: str
    strategy: str
    problem_set: str | None
    model: str | None
    config: str  # JSON
    config_hash: str
    code_version: str
    status: str
    started_at: datetime = field(default_factory=utcnow)
    finished_at: datetime | None = None


@dataclass
class ProblemRow(Row):
    table: ClassVar[str] = "problems"
    primary_key: ClassVar[tuple[str, ...]] = ("problem_id",)
    problem_id: str
    source: str | None
    source_id: str | None
    split: str | None
    kind: str
    statement: str | None
    formal_statement: str | None
    header: str | None
    reference_answer: str | None
    metadata: str | None  # JSON


@dataclass
class RunProblemRow(Row):
    table: ClassVar[str] = "run_problems"
    primary_key: ClassVar[tuple[str, ...]] = ("run_id", "problem_id")
    run_id: str
    problem_id: str
    position: int
    # The problem as this run's file names it: `problems` is shared by every run that
    # has the same content, and keeps the first file's id and metadata.
    source_id: str | None = None
    metadata: str | None = None  # JSON


@dataclass
class RunProblemLineRow(Row):
    """One line of the problem file a run was started with (problems/file_identity.py)."""

    table: ClassVar[str] = "run_problem_lines"
    primary_key: ClassVar[tuple[str, ...]] = ("run_id", "line")
    run_id: str
    line: int
    digest: str
    label: str
    content: str  # the line's JSON, keys sorted


@dataclass
class CallRow(Row):
    table: ClassVar[str] = "calls"
    primary_key: ClassVar[tuple[str, ...]] = ("call_id",)
    call_id: str
    run_id: str | None
    problem_id: str | None
    stage: str | None
    endpoint: str
    model: str
    n: int
    seed: int | None
    attempt: int
    status: str
    error: str | None
    prompt_tokens: int | None
    completion_tokens: int | None
    latency_s: float
    cost: float | None
    created_at: datetime = field(default_factory=utcnow)


@dataclass
class SampleRow(Row):
    table: ClassVar[str] = "samples"
    primary_key: ClassVar[tuple[str, ...]] = ("sample_id",)
    sample_id: str
    run_id: str
    problem_id: str
    stage: str
    parent_id: str | None
    idx: int
    round: int
    call_id: str | None
    model: str | None
    endpoint: str | None
    params: str | None  # JSON
    seed: int | None
    prompt: str | None
    completion: str | None
    finish_reason: str | None
    prompt_tokens: int | None
    completion_tokens: int | None
    tokens_exact: bool
    latency_s: float | None
    cost: float | None
    created_at: datetime = field(default_factory=utcnow)
    # A reasoning model's thinking, apart from `completion` (the answer); llm/reasoning.py.
    reasoning: str | None = None
    reasoning_tokens: int | None = None
    reasoning_tokens_source: str | None = None  # usage | tokenize | apportioned
    budget_exhausted: bool | None = None  # stopped on length while still thinking
    # An agent turn's tool calls as the server returned them (OpenAI shape, JSON); agents/.
    tool_calls: str | None = None
    # The completion's log-probability (sum over its tokens), when asked for: a step
    # search's tactic priority, kept so a resumed search ranks stored tactics the same.
    logprob: float | None = None


@dataclass
class VerdictRow(Row):
    table: ClassVar[str] = "verdicts"
    primary_key: ClassVar[tuple[str, ...]] = ("sample_id", "verifier")
    sample_id: str
    verifier: str
    verifier_version: str
    run_id: str
    problem_id: str
    outcome: str
    reason: str | None
    answer: str | None
    feedback: str | None
    details: str | None  # JSON
    duration_s: float
    created_at: datetime = field(default_factory=utcnow)


@dataclass
class ResultRow(Row):
    table: ClassVar[str] = "results"
    primary_key: ClassVar[tuple[str, ...]] = ("run_id", "problem_id")
    run_id: str
    problem_id: str
    selection: str
    selected_answer: str | None
    selected_sample_id: str | None
    correct: bool | None
    solved: bool
    n_samples: int
    n_passed: int
    created_at: datetime = field(default_factory=utcnow)
    stopped_by: str | None = None  # token_budget: the problem's token budget stopped its repairs


@dataclass
class CheckCacheRow(Row):
    """The formal checker's verdict cache (storage/check_cache.py), keyed exactly like
    `VerdictCache.key`: checker name + version, header hash, statement + source hash."""

    table: ClassVar[str] = "check_cache"
    primary_key: ClassVar[tuple[str, ...]] = ("checker", "header_hash", "source_hash")
    checker: str
    header_hash: str
    source_hash: str
    status: str
    result: str  # JSON of the CheckResult
    created_at: datetime = field(default_factory=utcnow)


@dataclass
class ToolRunRow(Row):
    """One tool call of an agent turn, run (or refused with a tool error): agents/."""

    table: ClassVar[str] = "tool_runs"
    primary_key: ClassVar[tuple[str, ...]] = ("tool_run_id",)
    tool_run_id: str  # keys.sample_id(run, problem, "tool", turn sample, call index)
    run_id: str
    problem_id: str
    sample_id: str  # the turn whose answer asked for it
    episode: int
    turn: int
    call_index: int
    tool_call_id: str | None  # the server's id (OpenAI tool calls) or text-N (the text protocol)
    tool: str
    input: str | None  # the arguments as the model wrote them
    output: str  # what went back to the model
    outcome: str  # ok | error | pass | fail | timeout | refused
    error: str | None  # why a call was refused (bad JSON, unknown tool, bad argument, too large, limit)
    details: str | None  # JSON: the check's verdict details, where the tool checks something
    duration_s: float
    created_at: datetime = field(default_factory=utcnow)


@dataclass
class EpisodeRow(Row):
    """How one agent episode (a conversation of turns) ended; written once it has."""

    table: ClassVar[str] = "episodes"
    primary_key: ClassVar[tuple[str, ...]] = ("run_id", "problem_id", "episode")
    run_id: str
    problem_id: str
    episode: int
    turns: int
    tool_calls: int
    ended: str  # answered | proved | max_turns | token_budget | wall_time | budget_exhausted | context_length | ...
    final_sample_id: str | None  # the last turn
    candidate_sample_id: str | None  # the candidate graded for this episode
    created_at: datetime = field(default_factory=utcnow)


@dataclass
class SearchNodeRow(Row):
    """One node of a step search's tree (proofflow/search/): the root state of a goal, or
    one tactic tried on a state and what it did. The tactic came from the expansion sample
    `sample_id` (stage 'search', parent_id = the state it expanded)."""

    table: ClassVar[str] = "search_nodes"
    primary_key: ClassVar[tuple[str, ...]] = ("node_id",)
    node_id: str  # search/stage.py node_key(run, problem, origin, tactic path)
    run_id: str
    problem_id: str
    origin: str  # the goal searched: "theorem", or "<sketch sample id>#<hole>"
    parent_node_id: str | None  # the state the tactic was applied to (NULL: the root)
    sample_id: str | None  # the expansion sample that proposed the tactic
    tactic: str | None
    depth: int
    logprob: float | None  # the tactic's log-probability
    score: float | None  # the search priority of the resulting state (cumulative log-probability)
    status: str  # root | open | proved | error | duplicate | timeout | crash
    goals: str | None  # JSON list of the resulting state's goals (pretty-printed, hypotheses included)
    error: str | None
    merged_into: str | None  # duplicate: the node with the same goals
    created_at: datetime = field(default_factory=utcnow)


# Write order inside one flush: a verdict or result never lands without its sample. Every
# table's row type is here, so a journal replay knows them all without importing anything.
WRITE_ORDER: tuple[type[Row], ...] = (
    RunRow, ProblemRow, RunProblemRow, CallRow, SampleRow, VerdictRow, ResultRow, CheckCacheRow,
    ToolRunRow, EpisodeRow, SearchNodeRow,
)
