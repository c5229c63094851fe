"""What the formal proving stages share: the problem wrapper, the run's checker with its
persisted verdict cache, storing a check as verdicts, and turning completions into
proof sources.

Verdicts a check leaves on a sample (docs/proving.md):
- `formal_audit`: the audited verdict (verifiers/formal.py `audit`) — ground truth for
  kind='formal' in the SQL views;
- the checker's name (`coq` / `lean`): the raw check, pass iff the checker said
  `complete` (v_verifier_audit then shows how often the audit overrules it);
- `<checker>_hole` on hole attempts only: did this tactic close its hole. Deliberately
  not a ground-truth name: a closed hole is not a proof of the theorem.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from typing import Any

from proofflow.keys import problem_id as content_id
from proofflow.storage.check_cache import cache_row, load_all
from proofflow.storage.records import SampleRow, VerdictRow
from proofflow.tasks.context import RunContext, WorkItem, runtime, to_json
from proofflow.verifiers.factory import make_checker
from proofflow.verifiers.formal import (
    AuditPolicy,
    CheckResult,
    FormalChecker,
    FormalProblem,
    VerdictCache,
    check_cached,
    normalize_ws,
    statement_core,
)
from proofflow.verifiers.verdict import Verdict

AUDIT = "formal_audit"


@dataclass(frozen=True)
class ProofProblem:
    """A FormalProblem with the identity the spine's WorkItem and storage expect."""

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


def formal(item: WorkItem) -> FormalProblem:
    return item.problem.formal  # type: ignore[attr-defined]


# --------------------------------------------------------------------------- checker runtime

class ProveRuntime:
    """Per-run checker and verdict cache, shared by the stage threads."""

    def __init__(self, ctx: RunContext, checker: FormalChecker | None = None):
        self.checker = checker or make_checker(ctx.settings.prove)
        self.backend = "coq" if ctx.settings.prove.backend == "coq" else "lean"
        self.policy = AuditPolicy.for_backend(self.backend)
        writer = runtime(ctx).writer
        name = f"{self.checker.name} {self.checker.version}"
        preloaded = load_all(runtime(ctx).store, name)
        self.cache = VerdictCache(persist=lambda key, result: writer.put(cache_row(key, result)),
                                  load=preloaded.get)
        self.checks_run = 0
        self._lock = threading.Lock()

    def check(self, problem: FormalProblem, source: str) -> tuple[CheckResult, Verdict, bool]:
        result, verdict, cached = check_cached(self.checker, problem, source, self.cache, self.policy)
        if not cached:
            with self._lock:
                self.checks_run += 1
        return result, verdict, cached

    def close(self) -> None:
        close = getattr(self.checker, "close", None)
        if close is not None:
            close()


_prove_runtimes: dict[str, ProveRuntime] = {}
_lock = threading.Lock()


def open_prove_runtime(ctx: RunContext, checker: FormalChecker | None = None) -> ProveRuntime:
    with _lock:
        if ctx.run_id not in _prove_runtimes:
            _prove_runtimes[ctx.run_id] = ProveRuntime(ctx, checker)
        return _prove_runtimes[ctx.run_id]


def prove_runtime(ctx: RunContext) -> ProveRuntime:
    return _prove_runtimes.get(ctx.run_id) or open_prove_runtime(ctx)


def close_prove_runtime(ctx: RunContext) -> dict[str, Any]:
    """Close the checker; returns its figures (checks run, cache hits) for the summary."""
    with _lock:
        rt = _prove_runtimes.pop(ctx.run_id, None)
    if rt is None:
        return {}
    figures = {"checks_run": rt.checks_run, "cache_hits": rt.cache.hits, "cache_misses": rt.cache.misses}
    rt.close()
    return figures


# --------------------------------------------------------------------------- checking + storing

def check_sample(ctx: RunContext, item: WorkItem, sample: SampleRow, source: str) -> tuple[CheckResult, VerdictRow]:
    """Check `source` as the proof of `sample`, store the raw and audited verdicts."""
    prt = prove_runtime(ctx)
    result, verdict, cached = prt.check(formal(item), source)
    raw = VerdictRow(
        sample_id=sample.sample_id, verifier=result.backend, verifier_version=result.version,
        run_id=ctx.run_id, problem_id=item.problem.id,
        outcome="pass" if result.status == "complete" else "timeout" if result.status == "timeout"
        else "error" if result.status == "crash" else "fail",
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
    runtime(ctx).writer.put(raw, audited)
    item.state.verdicts[(sample.sample_id, raw.verifier)] = raw
    item.state.verdicts[(sample.sample_id, AUDIT)] = audited
    return result, audited


def solved(item: WorkItem) -> bool:
    return item.solved(AUDIT)


def tool_sample(ctx: RunContext, item: WorkItem, sid: str, stage: str, model: str, text: str,
                parent_id: str | None, idx: int, round_: int, prompt: str | None = None) -> SampleRow:
    """A sample no model call produced (automation tactic, masking, assembly, a data
    set's informal proof): zero tokens, no call, `model` says what made it."""
    row = SampleRow(
        sample_id=sid, run_id=ctx.run_id, problem_id=item.problem.id, stage=stage,
        parent_id=parent_id, idx=idx, round=round_, call_id=None, model=model, endpoint=None,
        params=None, seed=None, prompt=prompt, completion=text, finish_reason=None,
        prompt_tokens=0, completion_tokens=0, tokens_exact=True, latency_s=0.0, cost=None,
    )
    runtime(ctx).writer.put(row)
    item.state.samples[sid] = row
    return row


# --------------------------------------------------------------------------- text

_FENCE = re.compile(r"```[ \t]*([\w+-]*)[^\n]*\n(.*?)(?:```|\Z)", re.DOTALL)
_COQ_END = re.compile(r"(?:Qed|Defined|Admitted|Abort|Save\s+\w+)\s*\.\s*$")


def fenced_blocks(text: str) -> list[str]:
    return [m.group(2) for m in _FENCE.finditer(text)]


_DECL = {
    "coq": re.compile(r"(?m)^\s*(?:Theorem|Lemma|Example|Corollary|Proposition|Fact|Remark|Definition|Fixpoint"
                      r"|Axiom|Parameter|Hypothesis|Variable|Inductive|Require|From|Section|Module)\b"),
    "lean": re.compile(r"(?m)^\s*(?:theorem|lemma|def|abbrev|example|axiom|variable|open|namespace|section"
                       r"|instance|noncomputable|private|@\[)"),
}


def extract_proof(completion: str, problem: FormalProblem) -> str:
    """The proof source a completion means. A code block (```coq / ```lean / ```) that
    contains the statement wins, else the first block; a block is kept whole when it
    declares things (helper lemmas, and also cheats such as an Axiom, which the audit
    must see). Without a block: the text from the statement on. A bare tactic body gets
    the statement put in front. Header lines the model repeated are dropped (the checker
    runs the header itself)."""
    blocks = fenced_blocks(completion)
    core = statement_core(problem.statement, problem.backend)
    with_stmt = [b for b in blocks if core in normalize_ws(b)]
    text = with_stmt[0] if with_stmt else blocks[0] if blocks else completion
    header_lines = {ln.strip() for ln in problem.header.splitlines() if ln.strip()}
    text = "\n".join(ln for ln in text.splitlines() if ln.strip() not in header_lines).strip("\n")
    if blocks and _DECL[problem.backend].search(text):
        m = _DECL[problem.backend].search(text)
        return text[m.start():].strip("\n") + "\n"
    return assemble(problem, text)


def assemble(problem: FormalProblem, text: str) -> str:
    """Statement + proof, whatever part of it `text` already carries."""
    text = text.strip("\n")
    first = problem.statement.strip().split("\n")[0].strip()
    at = text.find(first) if first else -1
    if at >= 0:
        return text[at:].rstrip() + "\n"
    body = text.strip()
    if problem.backend == "coq":
        if not body.startswith("Proof"):
            body = "Proof.\n" + body
        if not _COQ_END.search(body):
            body = body + "\nQed."
        return problem.statement.strip() + "\n" + body + "\n"
    lines = [ln if ln.startswith("  ") else "  " + ln.lstrip() for ln in body.splitlines() if ln.strip()]
    stmt = problem.statement.rstrip()
    if not stmt.endswith("by"):
        stmt += " by"
    return stmt + "\n" + ("\n".join(lines) or "  sorry") + "\n"


def extract_tactic(completion: str, backend: str) -> str:
    """A hole's proof from a completion: the first code block or the text, without
    `Proof.` / `Qed.` wrappers (the hole sits inside an existing proof)."""
    blocks = fenced_blocks(completion)
    text = (blocks[0] if blocks else completion).strip()
    if backend == "coq":
        text = re.sub(r"^\s*Proof\s*\.", "", text)
        text = re.sub(r"(?:Qed|Defined|Admitted)\s*\.\s*$", "", text).strip()
    else:
        text = re.sub(r"^\s*by\b", "", text).strip()
    return text or ("admit." if backend == "coq" else "sorry")


def clip(text: str, limit: int = 3000) -> str:
    return text if len(text) <= limit else "[... cut ...]\n" + text[-limit:]


# --------------------------------------------------------------------------- model calls

# Plan and request_samples live in tasks/sampling.py, shared with the solve stages.
from proofflow.tasks.sampling import Plan, request_samples  # noqa: E402,F401

__all__ = ["Plan", "request_samples"]  # re-exported for the proving stages


def prompt_name(base: str, ctx: RunContext) -> str:
    return f"{base}_{'coq' if ctx.settings.prove.backend == 'coq' else 'lean'}"
