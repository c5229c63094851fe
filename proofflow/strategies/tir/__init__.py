"""tir: tool-integrated reasoning (Qwen2.5-Math style). In one conversation per episode the
model reasons, writes Python, the sandbox runs it and the output comes back, up to
`max_tool_calls` runs; a turn without code is the final answer (`\\boxed{}`), graded by the
answer verifier as in every answer strategy. Several episodes per problem, voted.

Settings: `[solve.tir]` (TirConfig). The episode engine is proofflow/agents/ (turns are
samples of stage `turn`, tool runs are `tool_runs` rows); each ended episode leaves one
`answer` sample, the candidate the verifier grades and the vote counts. docs/agents.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field

from proofflow.agents.episode import Caps, Episode
from proofflow.agents.run import Executor
from proofflow.agents.standard_tools import RUN_PYTHON, python_executor
from proofflow.agents.tools import ToolSpec
from proofflow.strategies.registry import Chain, ChainEnv, Strategy, StrategyConfig

if TYPE_CHECKING:
    from proofflow.config import Settings
    from proofflow.tasks.context import RunContext, StageOutput, WorkItem

CANDIDATE_STAGE = "answer"


class AgentCaps(StrategyConfig):
    """The caps every agent strategy has (docs/agents.md)."""

    episodes: int = Field(4, ge=1, description="episodes (conversations) per problem; their answers are voted")
    max_turns: int = Field(4, ge=1, description="model turns per episode")
    max_tool_calls: int = Field(4, ge=0, description="calls per tool per episode; more are refused with a tool error")
    max_tokens_per_turn: int = Field(512, ge=1, description="max_tokens of each turn (thinking included)")
    max_tokens_per_problem: int | None = Field(
        None, ge=1, description="prompt + completion tokens of all turns of all episodes of a problem")
    wall_time_s: float | None = Field(300.0, gt=0, description="model time + tool time per episode")
    tool_protocol: Literal["text", "openai"] = Field(
        "text", description="text: fenced blocks are the calls (any server); openai: the server's tool calls "
        "(vLLM --enable-auto-tool-choice --tool-call-parser ...)")
    context_tokens: int | None = Field(
        None, ge=1, description="the model's context: an episode whose next turn would not fit ends (context_length)")
    max_input_chars: int = Field(20_000, ge=1, description="a tool call's input; longer is refused")
    max_output_chars: int = Field(2_000, ge=1, description="a tool's output sent back to the model")

    def caps(self) -> Caps:
        return Caps(max_turns=self.max_turns, max_calls_per_tool=self.max_tool_calls,
                    max_tokens_per_turn=self.max_tokens_per_turn, max_tokens_per_problem=self.max_tokens_per_problem,
                    wall_time_s=self.wall_time_s, max_input_chars=self.max_input_chars,
                    max_output_chars=self.max_output_chars, context_tokens=self.context_tokens,
                    protocol=self.tool_protocol)


class TirConfig(AgentCaps):
    exec_timeout_s: float = Field(10.0, gt=0, description="wall-clock limit per sandboxed program")


class TirSpec:
    """The agent the tir chain runs (agents/stages.AgentSpec). A plain class: Prefect
    walks dataclass task parameters."""

    __slots__ = ("caps", "episodes", "candidate_stage", "tools", "solving_tools", "system", "user", "exec_timeout_s")

    def __init__(self, cfg: TirConfig, system: str, user: str):
        self.caps = cfg.caps()
        self.episodes = cfg.episodes
        self.candidate_stage = CANDIDATE_STAGE
        self.tools: dict[str, ToolSpec] = {RUN_PYTHON.name: RUN_PYTHON}
        self.solving_tools: frozenset[str] = frozenset()
        self.system = system
        self.user = user  # with $problem
        self.exec_timeout_s = cfg.exec_timeout_s

    def opening(self, item: WorkItem) -> list[dict[str, Any]]:
        """The system prompt and the question; a chat-format problem's own messages
        (few-shot turns included) start the conversation instead, after our system
        prompt unless they bring their own."""
        problem = item.answer_problem
        chat = problem.metadata.get("messages")
        if isinstance(chat, list) and chat:
            messages = [dict(m) for m in chat]
            if messages[0].get("role") != "system":
                messages.insert(0, {"role": "system", "content": self.system})
            return messages
        from string import Template

        return [{"role": "system", "content": self.system},
                {"role": "user", "content": Template(self.user).substitute(problem=problem.statement)}]

    def executors(self, ctx: RunContext, item: WorkItem, out: StageOutput, extra: Any) -> Mapping[str, Executor]:
        return {RUN_PYTHON.name: python_executor(self.exec_timeout_s)}

    def candidate(self, item: WorkItem, episode: Episode) -> str:
        last = episode.last
        return (last.completion or "") if last is not None else ""


class ToolIntegratedReasoning(Strategy):
    name = "tir"
    kind = "answer"
    help = "tool-integrated reasoning: the model runs Python in the sandbox between reasoning steps; answers voted"
    config_model = TirConfig
    candidate_stages = (CANDIDATE_STAGE,)

    def identity_keys(self, settings: Settings) -> dict[str, Any]:
        cfg = self.config(settings)
        return {"strategy": self.name, "tir": cfg.model_dump(), "reasoning": settings.reasoning.model_dump(),
                "allow_last_number": settings.solve.allow_last_number}

    def spec(self, settings: Settings) -> TirSpec:
        cfg = self.config(settings)
        assert isinstance(cfg, TirConfig)
        return TirSpec(cfg, self.prompt("system").strip(), self.prompt("user", problem="$problem").strip())

    def chain(self, ctx: RunContext, items: list[WorkItem], env: ChainEnv) -> Chain:
        from proofflow.agents.stages import candidates_only, episodes_chain
        from proofflow.flows.chains import Call, Work
        from proofflow.tasks.select import select
        from proofflow.tasks.verify import verify

        def answers(items: list[WorkItem]) -> list[WorkItem]:
            return [candidates_only(i, CANDIDATE_STAGE) for i in items]

        yield from episodes_chain(ctx, items, self.spec(ctx.settings))
        # (the answers are taken again for select: verify's verdicts are stored by then)
        yield [Call(verify, (ctx, answers(items), env.names("verify")), Work.LIGHT)]
        yield [Call(select, (ctx, answers(items), env.names("select")), Work.LIGHT)]
