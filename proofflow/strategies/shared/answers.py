"""The answer strategies' chain: generate → [execute →] verify · r0 → repair · r1 →
[execute →] verify · r1 → … → select. gvr, pot and csv differ in their prompts and in
whether the sandbox runs the sample's code first; the stages are the same tasks."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from proofflow.strategies.registry import Chain, ChainEnv, Strategy
from proofflow.strategies.shared.repair_on import repair_verifier
from proofflow.verifiers.verdict import ANSWER

if TYPE_CHECKING:
    from proofflow.config import Settings
    from proofflow.tasks.context import RunContext, WorkItem


def answer_chain(ctx: RunContext, items: list[WorkItem], env: ChainEnv, runs_code: bool) -> Chain:
    """Each `yield` is one stage; it resumes once the stage's rows are stored, so the next
    stage plans from them (only failed candidates are repaired, ...)."""
    from proofflow.flows.chains import Call, Work, asks
    from proofflow.tasks.ask import ask
    from proofflow.tasks.execute import execute
    from proofflow.tasks.generate import plan_generate
    from proofflow.tasks.repair import plan_repair
    from proofflow.tasks.select import select
    from proofflow.tasks.verify import verify

    s = ctx.settings.solve
    names = env.names
    yield asks(ask, ctx, plan_generate(ctx, items), names, "generate")
    for round_ in range(0, s.repair_rounds + 1):
        if round_ > 0:
            yield asks(ask, ctx, plan_repair(ctx, items, round_), names, f"repair · r{round_}")
        if runs_code:  # pot / csv: run the model's code first
            yield [Call(execute, (ctx, items, names(f"execute · r{round_}")))]
        yield [Call(verify, (ctx, items, names(f"verify · r{round_}")), Work.LIGHT)]
    yield [Call(select, (ctx, items, names("select")), Work.LIGHT)]


def answer_identity(label: str, settings: Settings) -> dict[str, object]:
    """The keys every answer strategy adds to a run's identity (the keys and values runs
    stored before strategies had folders, so those runs resume)."""
    s = settings.solve
    # The token budget changes which repairs are asked: part of the identity when set (only
    # then, so runs stored before it existed keep theirs and resume).
    budget = {} if s.max_tokens_per_problem is None else {"max_tokens_per_problem": s.max_tokens_per_problem}
    return {
        **budget,
        "strategy": label,
        "samples": s.samples,
        "repair_rounds": s.repair_rounds,
        "repair_after_pass": s.repair_after_pass,
        "selection": s.selection,
        "vote_weights": s.vote_weights.model_dump(),
        "repair_on": repair_verifier(settings),
        "exec_timeout_s": s.exec_timeout_s,
        "allow_last_number": s.allow_last_number,
    }


class AnswerStrategy(Strategy):
    """An answer strategy on the shared chain: set `name`, `help`, `runs_code` (the
    sandbox runs the sample's code before the answer check) and its prompts/generate.txt
    and prompts/repair.txt ($problem; $problem, $attempt, $feedback)."""

    kind = "answer"
    runs_code: ClassVar[bool] = False
    repair_verifier: ClassVar[str] = ANSWER  # whose verdict sends a sample to repair by default

    def identity_keys(self, settings: Settings) -> dict[str, Any]:
        return answer_identity(self.run_label, settings)

    def chain(self, ctx: RunContext, items: list[WorkItem], env: ChainEnv) -> Chain:
        return answer_chain(ctx, items, env, runs_code=self.runs_code)
