"""What the stage tasks share: the run's identity, the per-problem work item, and the
process-wide resources (model client, database writer) they use."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from importlib import resources
from string import Template

from proofflow.config import Settings
from proofflow.llm.client import ModelClient
from proofflow.problems import Problem
from proofflow.storage.db import BatchWriter, ProblemState, Store
from proofflow.storage.records import SampleRow, VerdictRow


@dataclass(frozen=True)
class RunContext:
    run_id: str
    run_name: str
    problem_set: str
    settings: Settings

    @property
    def model(self) -> str:
        return self.settings.endpoint.model


class WorkItem:
    """One problem and everything stored for it so far in this run.

    Deliberately not a dataclass: Prefect walks dataclass parameters looking for
    futures, and walking every stored sample of every problem at each stage was the
    largest single orchestration cost in bench/bench_pipeline.py.
    """

    __slots__ = ("problem", "state")

    def __init__(self, problem: Problem, state: ProblemState | None = None):
        self.problem = problem
        self.state = state if state is not None else ProblemState()

    def __repr__(self) -> str:
        return f"WorkItem({self.problem.source_id!r}, {len(self.state.samples)} samples)"

    def samples(self, stage: str | None = None, round_: int | None = None) -> list[SampleRow]:
        rows = [
            s for s in self.state.samples.values()
            if (stage is None or s.stage == stage) and (round_ is None or s.round == round_)
        ]
        return sorted(rows, key=lambda s: (s.round, s.idx, s.parent_id or ""))

    def verdict(self, sample_id: str, verifier: str) -> VerdictRow | None:
        return self.state.verdicts.get((sample_id, verifier))

    def solved(self, verifier: str) -> bool:
        return any(v.outcome == "pass" for (_, name), v in self.state.verdicts.items() if name == verifier)


class Runtime:
    """Per-process resources of a run, shared by its task threads."""

    def __init__(self, ctx: RunContext):
        storage = ctx.settings.storage
        self.store = Store(storage.db_path, lock_timeout_s=storage.lock_timeout_s)
        self.writer = BatchWriter(self.store, flush_interval_s=storage.flush_interval_s)
        self.client = ModelClient(ctx.settings.endpoint, ctx.settings.sampling, on_call=self.writer.put)

    def close(self) -> None:
        self.client.close()
        self.writer.close()


_runtimes: dict[str, Runtime] = {}
_runtimes_lock = threading.Lock()


def open_runtime(ctx: RunContext) -> Runtime:
    with _runtimes_lock:
        if ctx.run_id not in _runtimes:
            _runtimes[ctx.run_id] = Runtime(ctx)
        return _runtimes[ctx.run_id]


def runtime(ctx: RunContext) -> Runtime:
    """The runtime the flow opened for this run (tasks run in the flow's process)."""
    return _runtimes.get(ctx.run_id) or open_runtime(ctx)


def close_runtime(ctx: RunContext) -> None:
    with _runtimes_lock:
        rt = _runtimes.pop(ctx.run_id, None)
    if rt is not None:
        rt.close()


def render_prompt(name: str, **values: str) -> str:
    """Fill tasks/prompts/NAME.txt; `$name` placeholders, so LaTeX braces stay literal."""
    text = resources.files("proofflow.tasks").joinpath("prompts", f"{name}.txt").read_text()
    return Template(text).substitute(**values)


def to_json(value: object) -> str:
    return json.dumps(value, default=str, ensure_ascii=False)
