"""A run while it executes, shared by the solve and prove flows.

`RunSpec` is what a run is (settings, problems, name), resolved once by whoever starts
it (the CLI, a deployment's flow run). `RunSession` owns a run while it executes:
start or resume (lease, identity and problem-file checks), the stored state, the one
database writer, and when to show progress and the end-of-run summary (what they show:
flows/artifacts.py). The flows only say which strategy's chains run and how many at
once (flows/solve.py, flows/prove.py); the chain driver is flows/chains.py.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Iterable, Sequence
from types import TracebackType
from typing import Any

from proofflow import __version__
from proofflow.config import Settings
from proofflow.flows.artifacts import PROGRESS_EVERY_S, create_progress, publish_summary, update_progress
from proofflow.flows.progress import Progress, publish
from proofflow.keys import config_hash, run_id_for
from proofflow.problems.file_identity import check_problem_file
from proofflow.storage.db import BatchWriter, ProblemState, RunState, Store
from proofflow.storage.lease import Holder, RunLease
from proofflow.storage.metrics import record_candidate_stages
from proofflow.storage.records import EpisodeRow, ResultRow, Row, RunRow, SampleRow, ToolRunRow, VerdictRow
from proofflow.tasks.context import AnyProblem, WorkItem, paid_for

log = logging.getLogger(__name__)


class RunConfigMismatch(ValueError):
    pass


class RunSpec:
    """One run, resolved once: settings, problems, the expanded name and the identity.

    Deliberately not a dataclass: Prefect would walk (and try to store) every problem
    when it is a flow parameter; as a plain object it is handed over as is.
    """

    __slots__ = ("kind", "problem_file", "problem_set", "name", "settings", "problems",
                 "identity", "strategy", "problem_rows", "candidate_stages")

    def __init__(self, kind: str, problem_file: str, problem_set: str, name: str, settings: Settings,
                 problems: Sequence[AnyProblem], identity: dict[str, Any], strategy: str,
                 problem_rows: Callable[[str], list[Row]], candidate_stages: tuple[str, ...]):
        self.kind = kind
        self.problem_file = problem_file
        self.problem_set = problem_set
        self.name = name
        self.settings = settings
        self.problems = list(problems)
        self.identity = identity
        self.strategy = strategy
        self.problem_rows = problem_rows  # run_id -> problems + run_problems rows
        # The stages whose samples the views count as the strategy's candidates, from the
        # one strategy the spec resolved (by run label, every strategy would be imported).
        self.candidate_stages = candidate_stages

    def __repr__(self) -> str:
        return f"RunSpec({self.kind} {self.name!r}, {len(self.problems)} problems)"

    @property
    def flow_run_name(self) -> str:
        return f"{self.kind} · {self.problem_set} · {self.name}"


def start_run(store: Store, spec: RunSpec) -> RunRow:
    """Create the run, or resume the stored one of that name. `identity` holds the
    settings that change what the run's samples mean; resuming with other values would
    mix incomparable samples, so it is refused with the differing keys named."""
    settings, identity = spec.settings, spec.identity
    wanted = RunRow(
        run_id=run_id_for(spec.name), name=spec.name, strategy=spec.strategy, problem_set=spec.problem_set,
        model=settings.endpoint.model,
        config=json.dumps({"identity": identity, "settings": json.loads(settings.model_dump_json())}),
        config_hash=config_hash(identity), code_version=__version__, status="running",
    )
    run = store.start_run(wanted)
    check_identity(run, spec)
    # The views count the samples of the stages the strategy names as its candidates.
    record_candidate_stages(store, spec.strategy, spec.candidate_stages)
    return run


def check_identity(stored: RunRow, spec: RunSpec) -> None:
    """RunConfigMismatch, naming the differing keys, when the stored run's identity is not
    the spec's: the one check, for the flow's start and for the finished-run lookup."""
    if stored.config_hash != config_hash(spec.identity):
        was = json.loads(stored.config).get("identity", {})
        changed = sorted(k for k in set(was) | set(spec.identity) if was.get(k) != spec.identity.get(k))
        raise RunConfigMismatch(
            f"run {spec.name!r} already exists with different settings ({', '.join(changed)}); "
            "resume it with the same settings or choose another --run name"
        )


def problem_source(spec: RunSpec) -> str:
    """The file the run's problems were read from. A bundled set's name (prove's
    "coq-examples") is not a path: the problems know their file."""
    first = spec.problems[0] if spec.problems else None
    source = getattr(first, "source", None) or getattr(getattr(first, "formal", None), "source", None)
    return str(source or spec.problem_file)


def finished_summary(spec: RunSpec) -> dict[str, Any] | None:
    """Resuming a run that has nothing left to do is a lookup, not a replay (issue 19.4):
    the stored run's headline figures (what the flow's summary returns), with no lease,
    no write, no flow run. Only when the run is completed, not held, nothing waits in a
    journal, every problem of the spec has its result, the problem file is line for line
    the one the run was started with, and the strategy's candidate stages are the stored
    ones; else None and the flow runs as before (and says what it says about a changed
    file, --extend, a held run). A changed identity is refused here with the flow's
    message (check_identity)."""
    from proofflow.problems.file_identity import FileLine, compare, file_lines
    from proofflow.storage.finished import finished_run
    from proofflow.storage.summary import run_headline

    storage = spec.settings.storage
    store = Store(storage.db_path, lock_timeout_s=storage.lock_timeout_s)
    found = finished_run(store, run_id_for(spec.name))
    if found is None or any(p.id not in found.done for p in spec.problems) or not found.problem_file:
        return None
    was = [FileLine(r.line, r.digest, r.label, r.content) for r in found.problem_file]
    if compare(was, file_lines(problem_source(spec), spec.settings.problems.max_line_bytes)):
        return None  # the flow refuses the file, or extends the run (--extend)
    check_identity(found.run, spec)
    # The flow records them at every start (start_run).
    if tuple(sorted(spec.candidate_stages)) != found.candidate_stages:
        return None
    return run_headline(store, found.run.run_id)


def _tokens(rows: Iterable[SampleRow]) -> int:
    return sum((s.prompt_tokens or 0) + (s.completion_tokens or 0) for s in rows)


def hold_run(store: Store, spec: RunSpec) -> RunLease:
    """Take the run's lease (another live process on it: RunHeldError naming it, or wait
    with storage.wait_for_run), then check the problem file against the run's
    (ProblemFileChanged naming the lines; storage.extend_run adds new lines)."""
    storage, run_id = spec.settings.storage, run_id_for(spec.name)

    def waiting(holder: Holder | None) -> None:
        log.warning("run %s is held by %s; waiting for it to finish", spec.name,
                    holder.describe() if holder else "another process")

    lease = RunLease(store.path, run_id, spec.name).acquire(wait=storage.wait_for_run, on_wait=waiting)
    try:
        if lease.previous is not None and lease.previous.pid != os.getpid():
            stored = store.get_run(run_id) if store.path.exists() else None
            if stored is not None and stored.status == "running":  # its process never finished it
                log.warning("run %s was interrupted (%s); resuming it", spec.name, lease.previous.describe())
        check_problem_file(store, run_id, spec.name, problem_source(spec), extend=storage.extend_run,
                           max_line_bytes=spec.settings.problems.max_line_bytes)
    except BaseException:
        lease.release()
        raise
    return lease


class RunSession:
    """A run while it executes, in the flow's process: the only writer of its rows.

        with RunSession(spec, counted="solved") as session:
            ...submit stages for session.todo; session.persist(rows) as each returns...

    Entering starts or resumes the run and registers its problems; leaving flushes every
    row, marks the run completed or failed, and publishes the summary and a final
    progress artifact, also when the run failed (then with what it did get done).
    """

    def __init__(self, spec: RunSpec, counted: str = "solved"):
        self.spec = spec
        self.counted = counted
        storage = spec.settings.storage
        self.store = Store(storage.db_path, lock_timeout_s=storage.lock_timeout_s)
        self.run: RunRow | None = None
        self.state: RunState | None = None
        self.writer: BatchWriter | None = None
        self.items: dict[str, WorkItem] = {}
        self.summary: dict[str, Any] = {}
        self.figures: dict[str, Any] = {}  # extra numbers for the summary (checks run, ...)
        self.observers: list[Callable[[Sequence[Row]], None]] = []  # see rows as they are stored
        self.done = self.solved = self.tokens = 0
        self._progress_id: Any = None
        self._progress_at = 0.0

    # -- life cycle --------------------------------------------------------------

    def __enter__(self) -> RunSession:
        spec = self.spec
        self.lease = hold_run(self.store, spec)  # one process per run, the run's own problem file
        try:
            self.run = start_run(self.store, spec)
            self.state = self.store.load_run_state(self.run.run_id)
            self.writer = BatchWriter(self.store, flush_interval_s=spec.settings.storage.flush_interval_s)
            self.writer.put(*spec.problem_rows(self.run.run_id))
            for p in spec.problems:
                self.items[p.id] = WorkItem(p, self.state.problem(p.id))
            done = [i for i in self.items.values() if i.state.result is not None]
            self.done = len(done)
            self.solved = sum(1 for i in done if i.state.result is not None and i.state.result.solved)
            # Run totals, not this session's: a resumed run counts what it already holds.
            self.tokens = _tokens(s for ps in self.state.problems.values() for s in ps.samples.values())
            self._publish_progress(first=True)
        except BaseException:
            self.lease.release()
            raise
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        status = "completed" if exc is None else "failed"
        assert self.run is not None and self.writer is not None
        try:
            self.writer.close()  # everything returned so far, also when a stage failed
        finally:
            try:
                self.store.finish_run(self.run.run_id, status)
            finally:
                self.lease.release()  # after the run's last write
        try:
            self._publish_progress()
            self.summary = self._publish_summary()
        except Exception as publish_error:  # never hide the run's own error behind this one
            if exc is None:
                raise
            log.warning("run %s: could not publish its partial summary: %s", self.spec.name, publish_error)

    # -- what to do --------------------------------------------------------------

    @property
    def run_id(self) -> str:
        assert self.run is not None
        return self.run.run_id

    @property
    def todo(self) -> list[WorkItem]:
        return [i for i in self.items.values() if i.state.result is None]

    @property
    def total(self) -> int:
        return len(self.items)

    # -- rows in -----------------------------------------------------------------

    def persist(self, rows: Sequence[Row], figures: dict[str, int] | None = None) -> None:
        """Store rows a stage returned and fold them into the run state; `figures` add
        up into the summary. Rows already known are written idempotently."""
        for key, value in (figures or {}).items():
            self.figures[key] = self.figures.get(key, 0) + value
        if not rows:
            return
        assert self.writer is not None
        self.writer.put(*rows)
        for observe in self.observers:
            observe(rows)
        finished: list[ResultRow] = []
        for row in rows:
            if isinstance(row, SampleRow):
                state = self._state(row.problem_id)
                if row.sample_id not in state.samples:
                    state.samples[row.sample_id] = row
                    self.tokens += _tokens([row])
            elif isinstance(row, VerdictRow):
                self._state(row.problem_id).verdicts[(row.sample_id, row.verifier)] = row
            elif isinstance(row, ToolRunRow):
                self._state(row.problem_id).tool_runs.setdefault(row.tool_run_id, row)
            elif isinstance(row, EpisodeRow):
                self._state(row.problem_id).episodes.setdefault(row.episode, row)
            elif isinstance(row, ResultRow):
                state = self._state(row.problem_id)
                if state.result is None:
                    finished.append(row)
                state.result = row
        for result in finished:
            self.done += 1
            self.solved += int(result.solved)
            item = self.items.get(result.problem_id)
            publish(Progress(self.spec.name, self.done, self.total, self.solved,
                             item.problem.source_id if item else result.problem_id))
        if finished and time.monotonic() - self._progress_at >= PROGRESS_EVERY_S:
            self._publish_progress()

    def persist_failure(self, exc: BaseException) -> None:
        """A stage that failed may still have paid for model calls (`exc.calls`, the
        client's) and made rows before it failed (`exc.stage_output`): keep them."""
        out = paid_for(exc)
        if self.writer is not None:
            self.persist(out.rows, out.figures)

    def _state(self, problem_id: str) -> ProblemState:
        assert self.state is not None
        return self.state.problem(problem_id)

    # -- artifacts ---------------------------------------------------------------

    def _publish_progress(self, first: bool = False) -> None:
        self._progress_at = time.monotonic()
        name = self.spec.name
        description = (f"{name}: {self.done}/{self.total} problems done, {self.solved} {self.counted}, "
                       f"{self.tokens:,} tokens spent on the run")
        if first or self._progress_id is None:
            self._progress_id = create_progress(name, self.done, self.total, self.solved, description)
        else:
            update_progress(self._progress_id, self.done, self.total, description)

    def _publish_summary(self) -> dict[str, Any]:
        """The end-of-run summary (flows/artifacts.py), with this session's figures."""
        summary = publish_summary(self.store, self.run_id, self.spec.name)
        summary.update(self.figures)
        return summary
