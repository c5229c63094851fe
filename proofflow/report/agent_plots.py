"""PNG plots of agent runs' episodes (v_episodes, one row per episode): pass@k over
episodes, turns and tokens per episode (solved apart from unsolved: the turns-to-solve
and tokens-to-solve distributions), the reasoning share of the tokens, and how the
episodes ended (budget_exhausted and token_budget included).

Drawn only for runs that have episodes; like plots.py, on matplotlib's Agg canvas.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator, PercentFormatter

from proofflow.report import display as fmt
from proofflow.report.plots import colors, save
from proofflow.report.tables import ReportData

# One file per plot, in the report's order; a report without episodes removes stale ones.
FILES = {
    "episodes_pass_at_k": "episodes_pass_at_k.png",
    "turns_per_episode": "turns_per_episode.png",
    "tokens_per_episode": "tokens_per_episode.png",
    "reasoning_share": "reasoning_share.png",
    "episode_endings": "episode_endings.png",
}

TITLES = {
    "episodes_pass_at_k": "pass@k over episodes",
    "turns_per_episode": "Turns per episode (turns-to-solve: the solved ones)",
    "tokens_per_episode": "Tokens per episode (tokens-to-solve: the solved ones)",
    "reasoning_share": "Reasoning share of the completion tokens",
    "episode_endings": "How episodes ended",
}


def agent_runs(data: ReportData) -> list[str]:
    """The runs (in the report's order) that have episodes."""
    have = {r["run_id"] for r in data.episodes}
    return [r for r in data.run_ids if r in have]


def _episodes(data: ReportData, run_id: str) -> list[dict[str, Any]]:
    return [e for e in data.episodes if e["run_id"] == run_id]


def plot_episodes_pass_at_k(data: ReportData, path: Path) -> Path:
    """pass@k with k counting episodes: an agent run's candidates are its episodes'."""
    fig = Figure(figsize=(7.5, 4.5))
    ax = fig.add_subplot()
    k_max = 1
    for i, run_id in enumerate(agent_runs(data)):
        pts = [(r["k"], r["pass_at_k"]) for r in data.pass_at_k if r["run_id"] == run_id and r["pass_at_k"] is not None]
        if not pts:
            continue
        ks, vs = zip(*pts)
        k_max = max(k_max, max(ks))
        ax.plot(ks, vs, "-o", markersize=4, color=colors()[i % len(colors())], label=data.name(run_id))
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlim(0.8, k_max + 0.2)
    ax.set_ylim(0, 1.02)
    ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    ax.set_xlabel("k (episodes per problem)")
    ax.set_ylabel("problems")
    ax.set_title(TITLES["episodes_pass_at_k"])
    ax.grid(True, alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)
    else:
        ax.text(0.5, 0.5, "no judged episodes", ha="center", va="center", transform=ax.transAxes)
    return save(fig, path)


def plot_turns_per_episode(data: ReportData, path: Path) -> Path:
    """Episodes by number of turns, solved (solid) stacked under unsolved (faded), runs
    side by side."""
    runs = agent_runs(data)
    turns = sorted({int(e["turns"]) for e in data.episodes})
    fig = Figure(figsize=(7.5, 4.5))
    ax = fig.add_subplot()
    width = 0.8 / max(1, len(runs))
    for i, run_id in enumerate(runs):
        color = colors()[i % len(colors())]
        eps = _episodes(data, run_id)
        solved = Counter(int(e["turns"]) for e in eps if e["solved"])
        unsolved = Counter(int(e["turns"]) for e in eps if not e["solved"])
        xs = [t + (i - (len(runs) - 1) / 2) * width for t in turns]
        ax.bar(xs, [solved[t] for t in turns], width, color=color, label=f"{data.name(run_id)} solved")
        ax.bar(xs, [unsolved[t] for t in turns], width, bottom=[solved[t] for t in turns], color=color,
               alpha=0.35, label=f"{data.name(run_id)} not solved")
    ax.set_xticks(turns)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("turns in the episode")
    ax.set_ylabel("episodes")
    ax.set_title(TITLES["turns_per_episode"])
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return save(fig, path)


def plot_tokens_per_episode(data: ReportData, path: Path) -> Path:
    """Each episode a dot at its tokens (prompt + completion of all its turns), one row per
    run; solved in the run's color, unsolved hollow; the mean of the solved marked."""
    runs = agent_runs(data)
    fig = Figure(figsize=(7.5, 1.6 + 0.7 * max(1, len(runs))))
    ax = fig.add_subplot()
    for i, run_id in enumerate(runs):
        color = colors()[i % len(colors())]
        eps = _episodes(data, run_id)
        # A fixed spread (not random): the same data draws the same picture.
        ys = [i + ((j % 7) - 3) * 0.05 for j in range(len(eps))]
        for solved in (True, False):
            pts = [(int(e["tokens"]), y) for e, y in zip(eps, ys) if bool(e["solved"]) == solved]
            if pts:
                xs, yv = zip(*pts)
                ax.scatter(xs, yv, s=22, label=f"{data.name(run_id)} {'solved' if solved else 'not solved'}",
                           facecolors=color if solved else "none", edgecolors=color)
        solved_tokens = [int(e["tokens"]) for e in eps if e["solved"]]
        if solved_tokens:
            mean = sum(solved_tokens) / len(solved_tokens)
            ax.plot([mean, mean], [i - 0.3, i + 0.3], color=color, linewidth=2)
            ax.text(mean, i + 0.33, f"tokens-to-solve {fmt.tokens(mean)}", ha="center", fontsize=8)
    ax.set_yticks(range(len(runs)))
    ax.set_yticklabels([data.name(r) for r in runs])
    ax.set_ylim(-0.6, len(runs) - 0.4 + 0.3)
    ax.set_xlim(left=0)
    ax.set_xlabel("tokens of the episode (prompt + completion, all turns)")
    ax.set_title(TITLES["tokens_per_episode"])
    ax.grid(True, axis="x", alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return save(fig, path)


def plot_reasoning_share(data: ReportData, path: Path) -> Path:
    """One bar per run: its completion tokens, thinking apart from the answer, the share
    written on the bar."""
    runs = agent_runs(data)
    fig = Figure(figsize=(max(4.5, 1.4 * len(runs) + 3), 4.5))
    ax = fig.add_subplot()
    xs = list(range(len(runs)))
    thinking = [sum(int(e["reasoning_tokens"] or 0) for e in _episodes(data, r)) for r in runs]
    completion = [sum(int(e["completion_tokens"] or 0) for e in _episodes(data, r)) for r in runs]
    answer = [max(0, c - t) for c, t in zip(completion, thinking)]
    ax.bar(xs, thinking, 0.6, color=colors()[1], label="thinking (not sent back)")
    ax.bar(xs, answer, 0.6, bottom=thinking, color=colors()[0], label="answer")
    for x, t, c in zip(xs, thinking, completion):
        ax.text(x, c, f"{t / c:.0%} thinking" if c else fmt.NA, ha="center", va="bottom", fontsize=8)
    ax.set_xticks(xs)
    ax.set_xticklabels([data.name(r) for r in runs])
    ax.set_ylim(0, max(completion, default=0) * 1.15 or 1)
    ax.set_ylabel("completion tokens of all turns")
    ax.set_title(TITLES["reasoning_share"])
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return save(fig, path)


def plot_episode_endings(data: ReportData, path: Path) -> Path:
    """Stacked horizontal bars: a run's episodes by how they ended (an episode not ended
    yet counts as 'running')."""
    runs = agent_runs(data)
    counts = {r: Counter(e["ended"] or "running" for e in _episodes(data, r)) for r in runs}
    endings = sorted({k for c in counts.values() for k in c})
    fig = Figure(figsize=(7.5, 1.6 + 0.5 * max(1, len(runs))))
    ax = fig.add_subplot()
    left = [0] * len(runs)
    for j, ending in enumerate(endings):
        widths = [counts[r][ending] for r in runs]
        ax.barh(range(len(runs)), widths, left=left, color=colors()[j % len(colors())], label=ending)
        for y, (x0, w) in enumerate(zip(left, widths)):
            if w:
                ax.text(x0 + w / 2, y, str(w), ha="center", va="center", fontsize=8, color="white")
        left = [a + w for a, w in zip(left, widths)]
    ax.set_yticks(range(len(runs)))
    ax.set_yticklabels([data.name(r) for r in runs])
    ax.invert_yaxis()
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("episodes")
    ax.set_title(TITLES["episode_endings"])
    if endings:
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return save(fig, path)


def write_agent_plots(data: ReportData, out_dir: Path) -> dict[str, Path]:
    out = Path(out_dir)
    if not agent_runs(data):
        for name in FILES.values():  # left over from an earlier report of agent runs: now wrong
            (out / name).unlink(missing_ok=True)
        return {}
    draw = {"episodes_pass_at_k": plot_episodes_pass_at_k, "turns_per_episode": plot_turns_per_episode,
            "tokens_per_episode": plot_tokens_per_episode, "reasoning_share": plot_reasoning_share,
            "episode_endings": plot_episode_endings}
    return {key: draw[key](data, out / name) for key, name in FILES.items()}
