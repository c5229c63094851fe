"""Stage: check every proof candidate that has no audited verdict yet.

Candidates are whole proofs (stages generate, repair) and sketches (a sketch with no
hole that checks is a proof). With stop_on_first_complete, a problem's remaining
candidates are not checked once one passed the audit: they would only cost checker time.

Batches: the flow cuts a problem's unchecked candidates into batches of CHECK_BATCH
distinct proof texts, one task run each (strategies/shared/proofs.py `checks`), so
each batch's verdicts are stored as that batch returns and, on a Dask cluster, one
problem's candidates spread over the workers. The size rule (deployments/scaling.md,
"Check batches"): a task run costs `o` seconds of orchestration and a check `c`
core-seconds; a batch of `b` checks keeps the orchestration under a tenth of the task
when b >= 10 o / c. Measured here: o = 0.23 s for a task run on a Dask worker (0.02 s on
threads), c = 0.16 s for a warm wasm-Lean check of a short proof and 1.4 s for Coq, so
b >= 10 * 0.23 / 0.16 = 14 for the cheapest checks; 16 holds that, and a problem of 64
candidates still spreads over 4 workers. bench/bench_cluster.py prints the rule's value
from its own measurements.

Which candidates get checked does not depend on the batch size, so stored rows are the
same on every runner: with stop_on_first_complete a problem's batches run one after the
other in candidate order (the next batch only when the problem is still unsolved), which
checks exactly what one task checking them in order would; without it every candidate
is checked, and all the batches go at once. Candidates with the same proof text go into
the same batch, so the later ones are cache hits as they would be in one task.
"""

from __future__ import annotations

from collections.abc import Collection

from prefect import task
from prefect.cache_policies import NO_CACHE

from proofflow.storage.records import SampleRow
from proofflow.tasks.context import RunContext, StageOutput, WorkItem
from proofflow.tasks.formal_runtime import AUDIT, FormalRuntime, KnownChecks, solved
from proofflow.tasks.proof_text import extract_proof

CANDIDATE_STAGES = ("generate", "repair", "sketch")
CHECK_BATCH = 16  # distinct proof texts per checking task (the size rule above)


def unchecked(item: WorkItem) -> list[SampleRow]:
    """The item's candidates without an audited verdict, in the order they are checked."""
    return [s for s in item.samples()
            if s.stage in CANDIDATE_STAGES and item.verdict(s.sample_id, AUDIT) is None]


def plan_batches(item: WorkItem, size: int | None = None) -> list[list[str]]:
    """The item's unchecked candidates as batches of sample ids, in check order, each
    holding at most `size` (CHECK_BATCH) distinct proof texts (a repeated text joins its
    first one's batch)."""
    size = size or CHECK_BATCH
    batches: list[list[str]] = []
    texts: list[set[str]] = []
    where: dict[str, int] = {}
    for sample in unchecked(item):
        source = extract_proof(sample.completion or "", item.formal)
        at = where.get(source)
        if at is None:
            if not batches or len(texts[-1]) >= size:
                batches.append([])
                texts.append(set())
            at = where[source] = len(batches) - 1
            texts[at].add(source)
        batches[at].append(sample.sample_id)
    return batches


def check_candidates(ctx: RunContext, items: list[WorkItem], known: KnownChecks,
                     only: Collection[str] | None = None) -> StageOutput:
    """Check the items' unchecked candidates (only the sample ids in `only`, when given)."""
    stop = ctx.settings.prove.stop_on_first_complete
    chosen = frozenset(only) if only is not None else None
    rt = FormalRuntime(ctx, known, StageOutput())
    with rt.keep_on_failure():
        for item in (i.copy() for i in items):
            for sample in unchecked(item):
                if chosen is not None and sample.sample_id not in chosen:
                    continue
                if stop and solved(item):
                    break
                rt.check_sample(item, sample, extract_proof(sample.completion or "", item.formal))
    return rt.finish()


@task(name="check-proofs", task_run_name="{label}", cache_policy=NO_CACHE)
def check_proofs(ctx: RunContext, items: list[WorkItem], known: KnownChecks,
                 label: str, only: list[str] | None = None) -> StageOutput:
    return check_candidates(ctx, items, known, only)
