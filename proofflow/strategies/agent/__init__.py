"""agent: a formal prover in a tool loop (Goedel-Prover-V2 self-correction, Kimina's
multi-turn fixing). The model proposes a proof; the `check` tool returns the checker's
messages with positions, the goal at each hole and the audit's reasons; the model fixes
the proof in the same conversation, up to `max_turns` turns. An audited pass ends the
episode. Optional `run_python` (`python = true`).

The candidate an episode leaves (stage `agent`) is the last proof it submitted; it is
checked and audited like every other proof (the check stage's cache makes that free when
the tool already checked it), and the problem is finished as for `whole` (first complete).

Goedel-V2's setting is `max_turns = 3` (a proof and two rounds of correction); Kimina's
multi-turn fixing is the same loop with more turns. Settings: `[prove.agent]`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from string import Template
from typing import TYPE_CHECKING, Any

from pydantic import Field

from proofflow.agents.episode import Episode
from proofflow.agents.run import Executor
from proofflow.agents.standard_tools import RUN_PYTHON, check_executor, check_spec, python_executor
from proofflow.agents.tools import ToolSpec
from proofflow.strategies.registry import Chain, ChainEnv, Strategy
from proofflow.strategies.tir import AgentCaps

if TYPE_CHECKING:
    from proofflow.config import Settings
    from proofflow.tasks.context import RunContext, StageOutput, WorkItem

CANDIDATE_STAGE = "agent"


class AgentConfig(AgentCaps):
    episodes: int = Field(1, ge=1, description="episodes (conversations) per problem")
    max_turns: int = Field(3, ge=1, description="model turns per episode (Goedel-V2: 3)")
    max_tool_calls: int = Field(3, ge=0, description="calls per tool per episode")
    max_tokens_per_turn: int = Field(1024, ge=1, description="max_tokens of each turn (thinking included)")
    python: bool = Field(False, description="also give the model run_python (the sandbox)")
    exec_timeout_s: float = Field(10.0, gt=0, description="wall-clock limit per sandboxed program")


class ProofAgentSpec:
    """The agent the chain runs (agents/stages.AgentSpec); a plain class (see TirSpec)."""

    __slots__ = ("caps", "episodes", "candidate_stage", "tools", "solving_tools", "system", "user", "backend",
                 "exec_timeout_s")

    def __init__(self, cfg: AgentConfig, backend: str, system: str, user: str):
        self.caps = cfg.caps()
        self.episodes = cfg.episodes
        self.candidate_stage = CANDIDATE_STAGE
        check = check_spec(backend)
        self.tools: dict[str, ToolSpec] = {check.name: check}
        if cfg.python:
            self.tools[RUN_PYTHON.name] = RUN_PYTHON
        self.solving_tools = frozenset({check.name})
        self.system = system
        self.user = user
        self.backend = backend
        self.exec_timeout_s = cfg.exec_timeout_s

    def opening(self, item: WorkItem) -> list[dict[str, Any]]:
        formal = item.formal
        header = formal.header.strip()
        user = Template(self.user).substitute(fence=self.backend, header=f"{header}\n" if header else "",
                                              statement=formal.statement)
        if formal.informal:
            user += f"\n\nInformally: {formal.informal}"
        return [{"role": "system", "content": self.system}, {"role": "user", "content": user}]

    def executors(self, ctx: RunContext, item: WorkItem, out: StageOutput, extra: Any) -> Mapping[str, Executor]:
        from proofflow.tasks.formal_runtime import FormalRuntime, KnownChecks
        from proofflow.tasks.proof_text import extract_proof

        known = extra if isinstance(extra, KnownChecks) else KnownChecks()
        runtime = FormalRuntime(ctx, known, out)

        def check(text: str) -> tuple[str, str, dict[str, Any]]:
            # The same extraction and audit as every other proof: a fenced block, a bare
            # tactic body or a whole theorem all mean the same proof here and in the end.
            source = extract_proof(f"```{self.backend}\n{text}\n```", item.formal)
            _, verdict, cached = runtime.check(item, source)
            details = dict(verdict.details, cached=cached, source=source)
            return verdict.outcome.value, verdict.feedback, details

        executors: dict[str, Executor] = {"check": check_executor(check)}
        if RUN_PYTHON.name in self.tools:
            executors[RUN_PYTHON.name] = python_executor(self.exec_timeout_s)
        return executors

    def candidate(self, item: WorkItem, episode: Episode) -> str:
        """The last proof the episode submitted to `check` (a fenced block, read by the
        same extraction as every proof), or the last turn's text if it never did."""
        checks = sorted((r for r in episode.runs.values() if r.tool == "check" and r.error is None),
                        key=lambda r: (r.turn, r.call_index))
        if checks:
            proof = json.loads(checks[-1].input or "{}").get("proof", "")
            return f"```{self.backend}\n{proof}\n```"
        last = episode.last
        return (last.completion or "") if last is not None else ""


class ProofAgent(Strategy):
    name = "agent"
    kind = "proof"
    help = "a prover in a tool loop: propose, check (errors, goals, audit), fix in the same conversation"
    config_model = AgentConfig
    candidate_stages = (CANDIDATE_STAGE,)

    def identity_keys(self, settings: Settings) -> dict[str, Any]:
        return {"strategy": self.name, "agent": self.config(settings).model_dump(),
                "reasoning": settings.reasoning.model_dump(), "backend": settings.prove.backend}

    def spec(self, settings: Settings) -> ProofAgentSpec:
        cfg = self.config(settings)
        assert isinstance(cfg, AgentConfig)
        from proofflow.verifiers.registry import backend as backend_named

        # The backend's prompt variant names its language and code fence (lean, coq).
        fence = backend_named(settings.prove.backend).prompt_variant
        system = self.prompt("system", language=fence.capitalize(), fence=fence).strip()
        user = self.prompt("user", fence="$fence", header="$header", statement="$statement").strip()
        return ProofAgentSpec(cfg, fence, system, user)

    def chain(self, ctx: RunContext, items: list[WorkItem], env: ChainEnv) -> Chain:
        from proofflow.agents.stages import candidates_only, episodes_chain
        from proofflow.flows.chains import Call, Work
        from proofflow.strategies.agent.check import check_agent_candidates
        from proofflow.tasks.finalize import finalize

        yield from episodes_chain(ctx, items, self.spec(ctx.settings), env.known)
        yield [Call(check_agent_candidates, (ctx, items, env.known, env.names("check")))]
        finals = [candidates_only(i, CANDIDATE_STAGE) for i in items]
        yield [Call(finalize, (ctx, finals, env.names("finalize")), Work.LIGHT)]
