"""What the stage tasks share: the run's identity, the per-problem work item, and what a
stage returns.

A stage is a pure function of what it is handed (the run context, the problems with the
samples and verdicts stored so far) to the new rows it made (`StageOutput`). It holds no
database handle and changes nothing it was handed: the flow process is the one writer,
and folds the returned rows into its state (flows/session.py, RunSession.persist).
Per-process resources (the model client, checker pools) come from tasks/resources.py.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from importlib import resources
from string import Template

from proofflow.config import Settings
from proofflow.keys import problem_id as content_id
from proofflow.problems import Problem
from proofflow.storage.db import ProblemState
from proofflow.storage.records import CallRow, EpisodeRow, ResultRow, Row, SampleRow, ToolRunRow, VerdictRow
from proofflow.verifiers.formal import FormalProblem
from proofflow.verifiers.verdict import Outcome


class RunContext:
    """The run a stage works for. Not a dataclass, for the reason WorkItem gives: Prefect
    would walk the settings at every task submission (~0.5 ms a task here)."""

    __slots__ = ("run_id", "run_name", "problem_set", "settings")

    def __init__(self, run_id: str, run_name: str, problem_set: str, settings: Settings):
        self.run_id = run_id
        self.run_name = run_name
        self.problem_set = problem_set
        self.settings = settings

    def __repr__(self) -> str:
        return f"RunContext({self.run_name!r})"

    @property
    def model(self) -> str:
        return self.settings.endpoint.model


@dataclass(frozen=True)
class ProofProblem:
    """A FormalProblem with the identity the work item and storage expect."""

    id: str
    source_id: str
    formal: FormalProblem
    kind: str = "formal"

    @classmethod
    def of(cls, formal: FormalProblem) -> ProofProblem:
        pid = content_id({"kind": "formal", "backend": formal.backend, "header": formal.header,
                          "statement": formal.statement})
        return cls(id=pid, source_id=str(formal.metadata.get("id") or formal.name), formal=formal)

    @property
    def label(self) -> str:
        return self.source_id if len(self.source_id) <= 40 else self.source_id[:37] + "..."

    @property
    def statement(self) -> str:
        return self.formal.statement


# Both problem kinds a work item can carry: an answer problem (solve) or a formal one (prove).
AnyProblem = Problem | ProofProblem


class WorkItem:
    """One problem and everything stored for it so far in this run.

    Deliberately not a dataclass: Prefect walks dataclass parameters looking for
    futures, and walking every stored sample of every problem at each stage was the
    largest single orchestration cost in bench/bench_pipeline.py.
    """

    __slots__ = ("problem", "state")

    def __init__(self, problem: AnyProblem, state: ProblemState | None = None):
        self.problem = problem
        self.state = state if state is not None else ProblemState()

    def __repr__(self) -> str:
        return f"WorkItem({self.problem.source_id!r}, {len(self.state.samples)} samples)"

    def copy(self) -> WorkItem:
        """A private copy a stage may add its own rows to (the rows stay shared: frozen
        in practice)."""
        s = self.state
        return WorkItem(self.problem, ProblemState(dict(s.samples), dict(s.verdicts), s.result,
                                                   dict(s.tool_runs), dict(s.episodes)))

    def add(self, *rows: Row) -> None:
        """Fold rows into this item (used on a stage's private copy)."""
        for row in rows:
            if isinstance(row, SampleRow):
                self.state.samples.setdefault(row.sample_id, row)
            elif isinstance(row, VerdictRow):
                self.state.verdicts[(row.sample_id, row.verifier)] = row
            elif isinstance(row, ResultRow):
                self.state.result = row
            elif isinstance(row, ToolRunRow):
                self.state.tool_runs.setdefault(row.tool_run_id, row)
            elif isinstance(row, EpisodeRow):
                self.state.episodes.setdefault(row.episode, row)

    @property
    def formal(self) -> FormalProblem:
        """The formal problem of a prove work item."""
        if not isinstance(self.problem, ProofProblem):
            raise TypeError(f"{self.problem.source_id} is an answer problem, not a formal one")
        return self.problem.formal

    @property
    def answer_problem(self) -> Problem:
        """The answer problem of a solve work item."""
        if not isinstance(self.problem, Problem):
            raise TypeError(f"{self.problem.source_id} is a formal problem, not an answer problem")
        return self.problem

    def samples(self, stage: str | None = None, round_: int | None = None) -> list[SampleRow]:
        rows = [
            s for s in self.state.samples.values()
            if (stage is None or s.stage == stage) and (round_ is None or s.round == round_)
        ]
        return sorted(rows, key=lambda s: (s.round, s.idx, s.parent_id or ""))

    def verdict(self, sample_id: str, verifier: str) -> VerdictRow | None:
        return self.state.verdicts.get((sample_id, verifier))

    def solved(self, verifier: str) -> bool:
        return any(passed(v) for (_, name), v in self.state.verdicts.items() if name == verifier)


def passed(verdict: VerdictRow | None) -> bool:
    return verdict is not None and verdict.outcome == Outcome.PASS.value


@dataclass
class StageOutput:
    """What a stage task returns: new rows (samples, verdicts, calls, results, cache
    entries) for the flow to store, and figures to add up for the run's summary."""

    rows: list[Row] = field(default_factory=list)
    figures: dict[str, int] = field(default_factory=dict)

    def add(self, *rows: Row) -> None:
        self.rows.extend(rows)

    def extend(self, other: StageOutput) -> None:
        self.rows.extend(other.rows)
        for k, v in other.figures.items():
            self.figures[k] = self.figures.get(k, 0) + v


def paid_for(exc: BaseException) -> StageOutput:
    """What a failed stage leaves to store: the rows it made before it failed
    (`exc.stage_output`) and the model calls it paid for (`exc.calls`, the client's)."""
    out = StageOutput()
    partial = getattr(exc, "stage_output", None)
    if isinstance(partial, StageOutput):
        out.extend(partial)
    out.add(*[c for c in getattr(exc, "calls", None) or () if isinstance(c, CallRow)])
    return out


# Where a task in the flow's own process hands rows over before it returns: the driver
# (flows/chains.py) sets it around the submit of an in-process task run, whose thread gets
# a copy of the submitting context. Model answers go this way the moment they return, so
# one task run can carry a unit's requests without holding back what they paid for.
_OUTBOX: ContextVar[Callable[[StageOutput], None] | None] = ContextVar("proofflow_stage_outbox", default=None)


def emit(output: StageOutput) -> bool:
    """Hand `output` to the flow now, to be stored and folded into its state before the
    task's own return; False where no flow listens here (a task on a worker, a direct
    call): then the caller returns the rows itself."""
    outbox = _OUTBOX.get()
    if outbox is None:
        return False
    if output.rows or output.figures:
        outbox(output)
    return True


@contextmanager
def outbox(receive: Callable[[StageOutput], None]) -> Iterator[None]:
    """`emit` calls `receive` in tasks submitted (from this context) inside the block."""
    token = _OUTBOX.set(receive)
    try:
        yield
    finally:
        _OUTBOX.reset(token)


def render_prompt(name: str, **values: str) -> str:
    """Fill tasks/prompts/NAME.txt; `$name` placeholders, so LaTeX braces stay literal."""
    text = resources.files("proofflow.tasks").joinpath("prompts", f"{name}.txt").read_text()
    return Template(text).substitute(**values)


def to_json(value: object) -> str:
    return json.dumps(value, default=str, ensure_ascii=False)
