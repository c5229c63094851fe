"""Names of what a run shows: the run's own name ({date} expanded), the problem set's
name, a problem's short label. Task-run names (`stage · set · model · problem`) are
flows/chains.py's `Names`."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from proofflow.tasks.context import AnyProblem

# File stems that name a split, not a data set: gsm8k/test.jsonl is "gsm8k".
SPLIT_NAMES = {"test", "train", "training", "validation", "valid", "val", "dev", "eval", "data"}


def expand_run_name(template: str, now: datetime | None = None) -> str:
    """`{date}` / `{datetime}` in a run name become today's date / the current minute
    (UTC), so a scheduled deployment starts one run per day (or per trigger) and a
    repeated trigger on the same day resumes that day's run."""
    now = now or datetime.now(UTC)
    return template.replace("{date}", now.strftime("%Y-%m-%d")).replace(
        "{datetime}", now.strftime("%Y-%m-%dT%H%M"))


def problem_set_name(problem_file: str, given: str | None = None) -> str:
    """The data set's name for labels: `given` (a --name), else the file's stem, or its
    directory's name when the stem only names a split (gsm8k/test.jsonl → gsm8k)."""
    if given:
        return given
    path = Path(problem_file)
    if path.stem.lower() in SPLIT_NAMES and path.parent.name:
        return path.parent.name
    return path.stem


def problem_label(problem: AnyProblem, problem_set: str) -> str:
    """A stable, short name for a problem: its source id, or `<set>-<line>` for files
    without ids (GSM8K) instead of "line N"."""
    sid = problem.source_id
    if sid.startswith("line ") and sid[5:].isdigit():
        sid = f"{problem_set}-{sid[5:]}"
    return sid if len(sid) <= 40 else sid[:37] + "..."
