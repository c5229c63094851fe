"""Running one episode in-process, without Prefect or a database: the same steps the
agent strategies' tasks take (agents/stages.py), looped here over rows kept in memory.
For tests and notebooks; runs use the strategies (`--strategy tir` / `agent`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from proofflow.agents.episode import Ask, Caps, End, RunTools, load_episode, next_step, problem_tokens
from proofflow.agents.run import Executor, ask_turn, end_rows, run_tools
from proofflow.agents.tools import ToolSpec
from proofflow.llm.client import ModelClient
from proofflow.storage.records import EpisodeRow, Row, SampleRow, ToolRunRow


class Stored:
    """The rows an episode made, as a run's state would hold them."""

    def __init__(self) -> None:
        self.samples: dict[str, SampleRow] = {}
        self.runs: dict[str, ToolRunRow] = {}
        self.endings: dict[int, EpisodeRow] = {}
        self.ended: EpisodeRow | None = None  # the last episode end stored
        self.all: list[Row] = []

    def add(self, rows: Sequence[Row]) -> None:
        self.all.extend(rows)
        for r in rows:
            if isinstance(r, SampleRow):
                self.samples[r.sample_id] = r
            elif isinstance(r, ToolRunRow):
                self.runs[r.tool_run_id] = r
            elif isinstance(r, EpisodeRow):
                self.endings[r.episode] = r
                self.ended = r


def drive(client: ModelClient, caps: Caps, opening: Sequence[Mapping[str, Any]], tools: Mapping[str, ToolSpec],
          executors: Mapping[str, Executor], run_id: str, problem_id: str, *, stored: Stored | None = None,
          episode: int = 0, candidate_stage: str = "answer", stop_after: int | None = None) -> Stored:
    """Step one episode until it ends (or `stop_after` steps: a run killed there)."""
    stored = stored or Stored()
    steps = 0
    while True:
        ep = load_episode(run_id, problem_id, episode, stored.samples, stored.runs, stored.endings.get(episode))
        step = next_step(ep, opening, tools, caps, run_id, problem_id, problem_tokens(stored.samples))
        if step is None or (stop_after is not None and steps >= stop_after):
            return stored
        steps += 1
        if isinstance(step, Ask):
            rows, end = ask_turn(client, step, ep, run_id, problem_id, tools, caps)
            stored.add(rows)
            if end is not None:
                stored.add(end_rows(end, ep, run_id, problem_id, candidate_stage, ""))
        elif isinstance(step, RunTools):
            stored.add(run_tools(step, ep, run_id, problem_id, executors, caps))
        else:
            assert isinstance(step, End)
            last = ep.last
            stored.add(end_rows(step, ep, run_id, problem_id, candidate_stage,
                                (last.completion or "") if last is not None else ""))
