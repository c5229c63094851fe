"""What the formal proving stages share at run time: the checker (one per process,
tasks/resources.py), the verdict cache a stage task checks through, and turning a check
into verdict rows.

Verdicts a check leaves on a sample (docs/proving.md):
- `formal_audit`: the audited verdict (verifiers/formal/audit.py `audit`) — ground truth
  for kind='formal' in the SQL views;
- the checker's name (its backend's: `coq` / `lean`): the raw check, pass iff the checker said
  `complete` (v_verifier_audit then shows how often the audit overrules it);
- `<checker>_hole` on hole attempts only: did this tactic close its hole. Deliberately
  not a ground-truth name: a closed hole is not a proof of the theorem.

The verdict cache: the flow loads the stored entries once (storage/check_cache.py) and
hands them to each checking task (`known`); a task returns the entries it added as
CheckCacheRows, which the flow stores and adds to what later tasks are handed.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from proofflow.storage.check_cache import CheckCacheRow, cache_row, result_from_json
from proofflow.storage.records import SampleRow, VerdictRow
from proofflow.tasks.context import RunContext, StageOutput, WorkItem, to_json
from proofflow.verifiers.formal import (
    AuditPolicy,
    CacheKey,
    CheckResult,
    FormalBackend,
    VerdictCache,
    check_cached,
)
from proofflow.verifiers.registry import backend as backend_named
from proofflow.verifiers.verdict import FORMAL_AUDIT, Outcome, Verdict

AUDIT = FORMAL_AUDIT

# A checker's status as the raw verdict's outcome.
_RAW_OUTCOME = {"complete": Outcome.PASS, "timeout": Outcome.TIMEOUT, "crash": Outcome.ERROR}


class KnownChecks:
    """The verdict-cache entries the flow knows (stored, plus those tasks returned so far),
    handed to every checking task. A plain class, not a dict: Prefect walks dict task
    parameters entry by entry at each submission, and a run's cache grows to thousands."""

    __slots__ = ("entries",)

    def __init__(self, entries: Mapping[CacheKey, CheckResult] | None = None):
        self.entries: dict[CacheKey, CheckResult] = dict(entries or {})

    def get(self, key: CacheKey) -> CheckResult | None:
        return self.entries.get(key)

    def add(self, row: CheckCacheRow) -> None:
        self.entries[CacheKey(row.checker, row.header_hash, row.source_hash)] = result_from_json(row.result)

    def __len__(self) -> int:
        return len(self.entries)


class FormalRuntime:
    """The checker and verdict cache of one stage task; new cache entries and the
    check figures go into the task's output."""

    def __init__(self, ctx: RunContext, known: KnownChecks, out: StageOutput):
        from proofflow.tasks import resources

        self.ctx = ctx
        self.checker = resources.formal_checker(ctx.settings.prove)
        self.backend: FormalBackend = backend_named(ctx.settings.prove.backend)
        self.policy = AuditPolicy.for_backend(self.backend)
        self.out = out
        self.cache = VerdictCache(persist=lambda key, result: out.add(cache_row(key, result)),
                                  load=known.get)
        self.checks_run = 0

    def check(self, item: WorkItem, source: str) -> tuple[CheckResult, Verdict, bool]:
        result, verdict, cached = check_cached(self.checker, item.formal, source, self.cache, self.policy,
                                               backend=self.backend)
        self.checks_run += int(not cached)
        return result, verdict, cached

    def check_sample(self, item: WorkItem, sample: SampleRow, source: str) -> tuple[CheckResult, VerdictRow]:
        """Check `source` as the proof of `sample`: the raw and the audited verdict go
        into the output and into `item` (the task's private copy)."""
        ctx = self.ctx
        result, verdict, cached = self.check(item, source)
        raw = VerdictRow(
            sample_id=sample.sample_id, verifier=result.backend, verifier_version=result.version,
            run_id=ctx.run_id, problem_id=item.problem.id,
            outcome=_RAW_OUTCOME.get(result.status, Outcome.FAIL).value,
            reason=result.status, answer=None, feedback=None,
            details=to_json({"cached": cached, "holes": len(result.holes), "errors": len(result.errors)}),
            duration_s=0.0 if cached else result.duration_s,
        )
        details = dict(verdict.details)
        details.update(cached=cached, source=source)
        audited = VerdictRow(
            sample_id=sample.sample_id, verifier=AUDIT, verifier_version=result.version,
            run_id=ctx.run_id, problem_id=item.problem.id, outcome=verdict.outcome.value,
            reason=verdict.reason, answer=None, feedback=verdict.feedback, details=to_json(details),
            duration_s=0.0 if cached else verdict.duration_s,
        )
        self.out.add(raw, audited)
        item.add(raw, audited)
        return result, audited

    @contextmanager
    def keep_on_failure(self) -> Iterator[None]:
        """A stage that fails part way (the model endpoint gives up during hole
        proving) still hands over what it made before: checks and model answers already
        paid for ride on the exception (`stage_output`) for the flow to store."""
        try:
            yield
        except Exception as exc:
            exc.stage_output = self.finish()  # type: ignore[attr-defined]
            raise

    def finish(self) -> StageOutput:
        """The output with this task's check figures (summed by the flow over the run)."""
        figures = {"checks_run": self.checks_run, "cache_hits": self.cache.hits,
                   "cache_misses": self.cache.misses}
        for k, v in figures.items():
            self.out.figures[k] = self.out.figures.get(k, 0) + v
        return self.out


def solved(item: WorkItem) -> bool:
    return item.solved(AUDIT)


def prompt_name(base: str, ctx: RunContext) -> str:
    """The backend's variant of a prompt template (`prove` → `prove_coq`)."""
    return f"{base}_{backend_named(ctx.settings.prove.backend).prompt_variant}"
