"""Stage: prove a sketch's holes, cheapest first, and assemble (DSP+); the same machinery
repairs a failing proof APOLLO-style.

From a parent (a sketch, or a rejected whole proof):
1. mask: steps the checker rejects become holes (mask_failing_lines), re-checking after
   each round because Coq stops at the first error; a proof left open gets a final
   `all: admit.` hole; when masking cannot isolate the failing step, the whole body
   becomes one hole. The masked source is a sample (stage 'mask', model 'mask').
2. per hole, in order: each automation tactic, tried by the real checker on the whole
   source with that hole filled (samples stage 'prove_hole', model 'automation', zero
   tokens); then up to hole_budget prover-model samples (stage 'prove_hole', real tokens).
   A fill counts when the filled source has no error and one hole less. Every attempt
   has a `<checker>_hole` verdict saying whether it closed its hole.
3. assemble: the source with every closed hole filled is a sample (stage 'assemble')
   checked with the audit. If it still has holes, another depth round starts from it.

All sample ids derive from (parent, attempt number) and every check goes through the
persisted verdict cache, so a rerun replays a half-done problem without model calls or
checks until it reaches what was never done.
"""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE

from proofflow.keys import sample_id
from proofflow.storage.records import SampleRow, VerdictRow
from proofflow.strategies.registry import strategy
from proofflow.tasks.context import RunContext, StageOutput, WorkItem, passed, render_prompt, to_json
from proofflow.tasks.formal_runtime import AUDIT, FormalRuntime, KnownChecks, prompt_name, solved
from proofflow.tasks.proof_text import clip, extract_proof, extract_tactic
from proofflow.tasks.sampling import Plan, sample_request, tool_sample
from proofflow.verifiers.formal import (
    CheckResult,
    FormalBackend,
    fill_hole,
    mask_failing_lines,
    split_holes,
)
from proofflow.verifiers.verdict import Outcome, hole_verifier

MAX_MASK_ROUNDS = 12


def _fill_closed(before: int, result: CheckResult, filled: str, backend: FormalBackend) -> bool:
    return (result.status in ("complete", "incomplete") and not result.errors
            and len(split_holes(filled, backend)) < before)


class _Prover:
    """Works one parent sample down to an assembled proof."""

    def __init__(self, ctx: RunContext, item: WorkItem, rt: FormalRuntime):
        self.ctx, self.item, self.rt = ctx, item, rt  # item: the task's private copy
        self.cfg = ctx.settings.prove
        self.backend = rt.backend
        self.problem = item.formal
        self.hole_verifier = hole_verifier(rt.checker.name)

    def check(self, source: str) -> CheckResult:
        return self.rt.check(self.item, source)[0]

    def tool_sample(self, sid: str, stage: str, model: str, text: str, parent_id: str,
                    idx: int, round_: int, prompt: str | None = None) -> SampleRow:
        row = tool_sample(self.ctx, self.item.problem.id, sid, stage, model, text, parent_id, idx,
                          round_, prompt)
        self.rt.out.add(row)
        self.item.add(row)
        return row

    def mask(self, parent: SampleRow, source: str, round_: int) -> tuple[SampleRow, str, CheckResult] | None:
        result = self.check(source)
        masked = source
        for _ in range(MAX_MASK_ROUNDS):
            if result.errors:
                new = mask_failing_lines(masked, result.messages, self.backend)
                if new == masked:
                    new = self.backend.close_open_proof(masked) if _is_qed_error(result) else masked
            elif result.status == "incomplete" and not split_holes(masked, self.backend):
                new = self.backend.close_open_proof(masked)
            else:
                break
            if new == masked and result.errors:
                # Masking cannot isolate the failing step (prose the lexer reads as a
                # declaration, a bullet mix-up...): then the failing part is the whole
                # proof body, and the one hole left is the theorem itself.
                new = self.backend.whole_proof_hole(self.problem.statement)
            if new == masked:
                return None  # nothing left to mask (an error in the header): give up
            masked = self.backend.ensure_closed(new)
            result = self.check(masked)
        if result.errors or result.status not in ("incomplete", "complete"):
            return None
        if masked == source:
            return parent, source, result
        sid = sample_id(self.ctx.run_id, self.item.problem.id, "mask", parent.sample_id, 0)
        row = self.item.state.samples.get(sid) or self.tool_sample(
            sid, "mask", "mask", masked, parent.sample_id, 0, round_)
        if self.item.verdict(sid, AUDIT) is None:
            self.rt.check_sample(self.item, row, masked)
        return row, masked, result

    def attempt(self, base: SampleRow, sid: str, source: str, k: int, text: str,
                goal: str, before: int) -> tuple[bool, str, CheckResult]:
        filled = fill_hole(source, k, text, self.backend)
        result = self.check(filled)
        closed = _fill_closed(before, result, filled, self.backend)
        if self.item.verdict(sid, self.hole_verifier) is None:
            first_error = result.errors[0].text.strip()[:200] if result.errors else None
            row = VerdictRow(
                sample_id=sid, verifier=self.hole_verifier, verifier_version=result.version,
                run_id=self.ctx.run_id, problem_id=self.item.problem.id,
                outcome=(Outcome.PASS if closed else Outcome.FAIL).value,
                reason="closed" if closed else (result.status if not first_error else "compile_error"),
                answer=None, feedback=first_error,
                details=to_json({"hole": k, "goal": goal, "tactic": text, "parent": base.sample_id}),
                duration_s=result.duration_s,
            )
            self.rt.out.add(row)
            self.item.add(row)
        return closed, filled, result

    def prove_holes(self, base: SampleRow, source: str, result: CheckResult, round_: int) -> str:
        k, n = 0, 0
        run, pid = self.ctx.run_id, self.item.problem.id
        while True:
            holes = split_holes(source, self.backend)
            if k >= len(holes) or len(holes) > self.cfg.max_holes:
                return source
            goal = result.holes[k].goal if k < len(result.holes) else ""
            closed = False
            for tactic in self.cfg.automation(self.problem.header):
                sid = sample_id(run, pid, "prove_hole", base.sample_id, n)
                n += 1
                text = self.backend.tactic_text(tactic)
                if sid not in self.item.state.samples:
                    self.tool_sample(sid, "prove_hole", "automation", text, base.sample_id, n - 1,
                                     round_, prompt=f"hole {k}: {goal}"[:2000])
                closed, filled, new = self.attempt(base, sid, source, k, text, goal, len(holes))
                if closed:
                    break
            if not closed:  # DSP+'s order: automation, then the step search, then the hole-proof model
                from proofflow.search.runtime import dsp_step_search
                closed, filled, new, n = dsp_step_search(self, base, source, k, goal, len(holes), n, round_, result)
            if not closed and self.cfg.hole_budget:
                ids = [sample_id(run, pid, "prove_hole", base.sample_id, n + i) for i in range(self.cfg.hole_budget)]
                indices = list(range(n, n + self.cfg.hole_budget))
                n += self.cfg.hole_budget
                missing = [(s, i) for s, i in zip(ids, indices) if s not in self.item.state.samples]
                if missing:
                    prompt = render_prompt(prompt_name("hole", self.ctx), sketch=clip(source, 2500),
                                           goal=clip(goal or "(the goal at the hole)", 1500))
                    asked = sample_request(self.ctx, Plan(pid, prompt, "prove_hole", [s for s, _ in missing],
                                                          [i for _, i in missing], base.sample_id, round_))
                    self.rt.out.extend(asked)
                    self.item.add(*asked.rows)
                for sid in ids:
                    text = extract_tactic(self.item.state.samples[sid].completion or "", self.backend)
                    closed, filled, new = self.attempt(base, sid, source, k, text, goal, len(holes))
                    if closed:
                        break
            if closed:
                source, result = filled, new
            else:
                k += 1  # leave this hole open; try the next one

    def run(self, parent: SampleRow, source: str, depth: int) -> None:
        for round_ in range(1, depth + 1):
            masked = self.mask(parent, source, round_)
            if masked is None:
                return
            base, start, result = masked
            assembled = self.prove_holes(base, start, result, round_)
            if assembled == start:
                return  # nothing closed: another round from the same text would repeat this one
            sid = sample_id(self.ctx.run_id, self.item.problem.id, "assemble", base.sample_id, 0)
            row = self.item.state.samples.get(sid) or self.tool_sample(
                sid, "assemble", "assemble", assembled, base.sample_id, 0, round_)
            if self.item.verdict(sid, AUDIT) is None:
                self.rt.check_sample(self.item, row, assembled)
            if solved(self.item):
                return
            parent, source = row, assembled


def _is_qed_error(result: CheckResult) -> bool:
    return any("incomplete proof" in m.text or "unfocused" in m.text.lower() for m in result.errors)


def parents_for(ctx: RunContext, item: WorkItem, mode: str) -> list[SampleRow]:
    """dsp: every sketch; repair: the failing whole proofs, latest round first."""
    if mode == "sketch":
        return [s for s in item.samples("sketch")]
    failed = [s for s in item.samples() if s.stage in ("generate", "repair")
              and (v := item.verdict(s.sample_id, AUDIT)) is not None and not passed(v)]
    failed.sort(key=lambda s: (-s.round, s.idx))
    # [prove.whole] repair_candidates (looked up by name: the strategy's module imports this one)
    return failed[: strategy("whole", "proof").config(ctx.settings).model_dump()["repair_candidates"]]


def open_parents(ctx: RunContext, item: WorkItem, mode: str) -> list[str]:
    """The parents the stage would work on, in order (those the audit has not passed)."""
    return [s.sample_id for s in parents_for(ctx, item, mode) if not passed(item.verdict(s.sample_id, AUDIT))]


def prove_items(ctx: RunContext, items: list[WorkItem], mode: str,
                known: KnownChecks, only: list[str] | None = None) -> StageOutput:
    """Work every parent of every item (or `only` those sample ids) down to assembled
    proofs; returns the samples (masks, hole attempts, model calls, assemblies),
    verdicts and cache entries made."""
    cfg = ctx.settings.prove
    depth = max(1, cfg.repair_depth) if mode == "sketch" else cfg.repair_depth
    rt = FormalRuntime(ctx, known, StageOutput())
    with rt.keep_on_failure():
        for item in (i.copy() for i in items):
            for parent in parents_for(ctx, item, mode):
                if only is not None and parent.sample_id not in only:
                    continue
                if solved(item) and cfg.stop_on_first_complete:
                    break
                if passed(item.verdict(parent.sample_id, AUDIT)):
                    continue
                source = extract_proof(parent.completion or "", item.formal)
                _Prover(ctx, item, rt).run(parent, source, depth)
    return rt.finish()


@task(name="prove-holes", task_run_name="{label}", cache_policy=NO_CACHE)
def prove_holes(ctx: RunContext, items: list[WorkItem], mode: str, only: list[str] | None, known: KnownChecks,
                label: str) -> StageOutput:
    return prove_items(ctx, items, mode, known, only)
