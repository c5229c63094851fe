"""Reading agent conversations back: the turns, tool runs and episode ends of one problem
of a run (proofflow/agents/ rebuilds the messages from them; `proofflow show RUN
--problem ID --conversation` prints them)."""

from __future__ import annotations

from dataclasses import dataclass, field

from proofflow.storage.bulk import select_rows
from proofflow.storage.db import StorageError, Store
from proofflow.storage.records import EpisodeRow, SampleRow, ToolRunRow

TURN_STAGE = "turn"  # agents/episode.py's stage name for a turn


@dataclass
class ProblemConversations:
    problem_id: str
    source_id: str | None
    samples: dict[str, SampleRow] = field(default_factory=dict)  # the turns, by id
    tool_runs: dict[str, ToolRunRow] = field(default_factory=dict)
    episodes: dict[int, EpisodeRow] = field(default_factory=dict)

    @property
    def episode_numbers(self) -> list[int]:
        return sorted({s.idx for s in self.samples.values()} | set(self.episodes))


def problem_conversations(store: Store, run_id: str, problem: str) -> ProblemConversations:
    """The stored conversations of `problem` (its id in the run's file, or its problem id)
    in run `run_id`. StorageError naming the problem when the run has no such problem."""
    with store.connect(read_only=True) as con:
        found = con.execute(
            "SELECT problem_id, source_id FROM v_run_problem_ids "
            "WHERE run_id = ? AND (problem_id = ? OR source_id = ?) ORDER BY problem_id = ? DESC LIMIT 1",
            [run_id, problem, problem, problem]).fetchone()
        if found is None:
            raise StorageError(f"run {run_id} has no problem {problem!r} (give its id in the problem file)")
        pid, source_id = str(found[0]), found[1]
        out = ProblemConversations(pid, source_id)
        for s in select_rows(con, SampleRow, "WHERE run_id = ? AND problem_id = ? AND stage = ?",
                             [run_id, pid, TURN_STAGE]):
            out.samples[s.sample_id] = s
        for t in select_rows(con, ToolRunRow, "WHERE run_id = ? AND problem_id = ?", [run_id, pid]):
            out.tool_runs[t.tool_run_id] = t
        for e in select_rows(con, EpisodeRow, "WHERE run_id = ? AND problem_id = ?", [run_id, pid]):
            out.episodes[e.episode] = e
    return out
