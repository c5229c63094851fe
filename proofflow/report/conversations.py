"""Agent conversations in the report: which problems' conversations are shown, and their
text — exactly what `proofflow show RUN --problem ID --conversation` prints
(agents/transcript.render over the stored rows).

`proofflow report RUN --conversation ID` picks a problem by its id in the problem file;
the words `solved`, `unsolved` and `all` pick an agent run's problems with at least one
solved episode, with none, or any, up to a cap each (the report stays readable).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from proofflow.agents.transcript import render
from proofflow.storage.conversations import problem_conversations
from proofflow.storage.db import StorageError, Store

KEYWORDS = ("solved", "unsolved", "all")
DEFAULT_CAP = 5


@dataclass(frozen=True)
class Conversation:
    run_id: str
    problem: str          # the id in the problem file
    solved: bool | None   # an episode of it solved the problem; None: not an agent problem
    text: str             # transcript.render's text; "" when nothing was stored


def solved_by_problem(episodes: Sequence[dict[str, Any]], run_id: str) -> dict[str, bool]:
    """Problem (its file id) -> whether an episode of it solved it, for one run."""
    solved: dict[str, bool] = {}
    for e in episodes:
        if e["run_id"] == run_id:
            key = str(e["source_id"] or e["problem_id"])
            solved[key] = solved.get(key, False) or bool(e["solved"])
    return solved


def chosen_problems(episodes: Sequence[dict[str, Any]], run_id: str, wanted: Sequence[str],
                    cap: int = DEFAULT_CAP) -> list[str]:
    """The problems of `run_id` to show, in the order asked, each once: the ids given, and
    up to `cap` problems per keyword (in the episode view's order: by problem id)."""
    solved = solved_by_problem(episodes, run_id)
    out: list[str] = []
    for want in wanted:
        if want in KEYWORDS:
            picked = [p for p, ok in solved.items()
                      if want == "all" or ok == (want == "solved")][:cap]
        else:
            picked = [want]
        out += [p for p in picked if p not in out]
    return out


def collect_conversations(store: Store, run_ids: Sequence[str], episodes: Sequence[dict[str, Any]],
                          wanted: Sequence[str], cap: int = DEFAULT_CAP) -> list[Conversation]:
    """The chosen conversations of every run. A problem id no run has is a StorageError
    naming it (a typo must not give a report that silently lacks it)."""
    out: list[Conversation] = []
    found: set[str] = set()
    for run_id in run_ids:
        solved = solved_by_problem(episodes, run_id)
        for problem in chosen_problems(episodes, run_id, wanted, cap):
            try:
                data = problem_conversations(store, run_id, problem)
            except StorageError:
                continue  # this run has no such problem; another run may
            found.add(problem)
            text = render(data, run_id) if data.episode_numbers else ""
            out.append(Conversation(run_id, problem, solved.get(problem), text))
    missing = [w for w in wanted if w not in KEYWORDS and w not in found]
    if missing:
        raise StorageError(f"--conversation: no run of this report has problem(s) {', '.join(map(repr, missing))} "
                           "(give the id in the problem file)")
    return out


def fenced(text: str) -> str:
    """`text` as a Markdown code block whose fence no backtick run inside it can close
    (model output holds ```python blocks)."""
    longest = run = 0
    for ch in text:
        run = run + 1 if ch == "`" else 0
        longest = max(longest, run)
    fence = "`" * max(3, longest + 1)
    return f"{fence}text\n{text.rstrip()}\n{fence}"
