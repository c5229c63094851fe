"""PNG plots of a report: pass@k / coverage / maj@k vs samples, tokens-of-pass, cost-of-pass
(only when something is priced: unpriced, it would be an empty chart on a dollar axis),
tokens by stage.

Figures are drawn on matplotlib's Agg canvas directly (no pyplot): no GUI backend is ever
chosen, and nothing global is touched, so this works headless and from worker threads.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FixedLocator, NullLocator, PercentFormatter

from proofflow.report import display as fmt
from proofflow.report.tables import ReportData

DPI = 120


def save(fig: Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    FigureCanvasAgg(fig)
    fig.savefig(path, dpi=DPI, bbox_inches="tight")
    return path


def colors() -> list[str]:
    import matplotlib as mpl

    return list(mpl.rcParams["axes.prop_cycle"].by_key()["color"])


def plot_pass_at_k(data: ReportData, path: Path) -> Path:
    """One color per run: pass@k estimate (solid), observed coverage (dashed), maj@k
    (dotted), against k on a log2 axis."""
    fig = Figure(figsize=(7.5, 4.5))
    ax = fig.add_subplot()
    palette = colors()
    n_max, y_max = 1, 0.0
    for i, run_id in enumerate(data.run_ids):
        color = palette[i % len(palette)]
        name = data.name(run_id)
        for rows, key, style, label in (
            (data.pass_at_k, "pass_at_k", "-", "pass@k"),
            (data.coverage, "coverage", "--", "coverage"),
            (data.maj_at_k, "maj_at_k", ":", "maj@k"),
        ):
            pts = [(r["k"], r[key]) for r in rows if r["run_id"] == run_id and r[key] is not None]
            if not pts:
                continue
            ks, vs = zip(*pts)
            n_max, y_max = max(n_max, max(ks)), max(y_max, max(vs))
            # Observed coverage and maj@k change only at whole k: drawn as steps.
            ax.plot(ks, vs, style, color=color, marker="o" if style == "-" else None,
                    markersize=3, label=f"{name} {label}",
                    drawstyle="default" if style == "-" else "steps-post")
    ax.set_xscale("log", base=2)
    ticks = fmt.k_points(n_max) or [1]
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xticklabels([str(k) for k in ticks])
    ax.set_xlim(0.9, max(2, n_max) * 1.1)
    # Zoom in on low curves (a hard set, a small model) but never past 100%.
    ax.set_ylim(0, min(1.02, max(0.1, y_max * 1.2)))
    ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    ax.set_xlabel("k (first-attempt samples per problem, log scale)")
    ax.set_ylabel("problems")
    ax.set_title("pass@k (solid), coverage (dashed), maj@k (dotted)")
    ax.grid(True, alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return save(fig, path)


def _bars(data: ReportData, rows: list[dict[str, Any]], key: str, label: Callable[[float | None], str],
          xlabel: str, title: str, path: Path) -> Path:
    """Horizontal bars per (run, model); an unknown value is labelled n/a, an infinite one ∞
    (neither is drawn as a bar: both would be misleading at any length)."""
    labels = [f"{data.name(r['run_id'])} · {r['model'] or '?'}" for r in rows]
    values = [r[key] for r in rows]
    finite = [v for v in values if v is not None and not math.isinf(v)]
    fig = Figure(figsize=(7.5, 1.2 + 0.45 * max(1, len(rows))))
    ax = fig.add_subplot()
    ypos = list(range(len(rows)))
    ax.barh(ypos, [v if v is not None and not math.isinf(v) else 0 for v in values],
            color=colors()[0])
    top = max(finite, default=1.0) or 1.0
    for y, v in zip(ypos, values):
        ax.text((v if v is not None and not math.isinf(v) else 0) + top * 0.01, y,
                label(v), va="center", fontsize=9)
    ax.set_yticks(ypos)
    ax.set_yticklabels(labels)
    ax.invert_yaxis()
    ax.set_xlim(0, top * 1.25)
    ax.set_xlabel(xlabel)
    ax.set_title(title)
    if not rows:
        ax.text(0.5, 0.5, "no judged samples", ha="center", va="center", transform=ax.transAxes)
    return save(fig, path)


def plot_cost_of_pass(data: ReportData, path: Path) -> Path:
    return _bars(data, data.cost_of_pass_by_model, "cost_of_pass", _cost_label,
                 "expected cost of one passing first attempt ($)", "Cost-of-pass by run and model", path)


def plot_tokens_of_pass(data: ReportData, path: Path) -> Path:
    """Tokens per passing first attempt: needs no price, compares runs across hardware."""
    return _bars(data, data.tokens_of_pass_by_model, "tokens_of_pass", _tokens_label,
                 "expected tokens (prompt + completion) of one passing first attempt",
                 "Tokens-of-pass by run and model", path)


def _tokens_label(value: float | None) -> str:
    if value is not None and math.isinf(value):
        return f"{fmt.INF} (nothing passed)"
    return f"{fmt.tokens(value)} tokens"


def _cost_label(value: float | None) -> str:
    if value is None:
        return f"{fmt.NA} (unpriced)"
    if math.isinf(value):
        return f"{fmt.INF} (nothing passed)"
    return fmt.money(value)


def plot_tokens_by_stage(data: ReportData, path: Path) -> Path:
    """Stacked bars: one bar per run, one segment per stage (prompt + completion tokens)."""
    stages: list[str] = []
    totals: dict[tuple[str, str], int] = {}
    for r in data.usage:
        if r["stage"] not in stages:
            stages.append(r["stage"])
        key = (r["run_id"], r["stage"])
        totals[key] = totals.get(key, 0) + int(r["tokens"] or 0)
    fig = Figure(figsize=(max(4.5, 1.4 * len(data.run_ids) + 3), 4.5))
    ax = fig.add_subplot()
    palette = colors()
    xs = list(range(len(data.run_ids)))
    bottom = [0] * len(xs)
    for j, stage in enumerate(stages):
        heights = [totals.get((run_id, stage), 0) for run_id in data.run_ids]
        ax.bar(xs, heights, bottom=bottom, label=stage, color=palette[j % len(palette)], width=0.6)
        bottom = [b + h for b, h in zip(bottom, heights)]
    for x, total in zip(xs, bottom):
        ax.text(x, total, f"{total:,}", ha="center", va="bottom", fontsize=8)
    ax.set_xticks(xs)
    ax.set_xticklabels([data.name(r) for r in data.run_ids])
    ax.set_ylabel("tokens (prompt + completion)")
    ax.set_title("Tokens by stage")
    ax.set_ylim(0, max(bottom, default=0) * 1.12 or 1)
    if stages:
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return save(fig, path)


def write_plots(data: ReportData, out_dir: Path) -> dict[str, Path]:
    out = Path(out_dir)
    plots = {"pass_at_k": plot_pass_at_k(data, out / "pass_at_k.png"),
             "tokens_of_pass": plot_tokens_of_pass(data, out / "tokens_of_pass.png")}
    if data.priced():
        plots["cost_of_pass"] = plot_cost_of_pass(data, out / "cost_of_pass.png")
    else:  # a chart left over from an earlier, priced report would now be wrong
        (out / "cost_of_pass.png").unlink(missing_ok=True)
    plots["tokens_by_stage"] = plot_tokens_by_stage(data, out / "tokens_by_stage.png")
    return plots
