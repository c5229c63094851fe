"""The Markdown report: every table and plot of one or more runs, written to a folder
(report.md beside its PNGs, linked relatively so the folder can be moved or shared)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from proofflow.report.agent_plots import TITLES as AGENT_TITLES
from proofflow.report.agent_plots import write_agent_plots
from proofflow.report.conversations import Conversation, fenced
from proofflow.report.plots import write_plots
from proofflow.report.tables import Grid, ReportData, all_grids


@dataclass(frozen=True)
class ReportFiles:
    markdown: Path
    plots: dict[str, Path]


def markdown_table(grid: Grid) -> str:
    def cell(text: str) -> str:
        return text.replace("|", "\\|").replace("\n", " ")

    align = ["---:" if i in grid.numeric else "---" for i in range(len(grid.headers))]
    lines = ["| " + " | ".join(cell(h) for h in grid.headers) + " |",
             "|" + "|".join(align) + "|"]
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in grid.rows]
    if not grid.rows:
        lines.append("| " + " | ".join(["—"] * len(grid.headers)) + " |")
    return "\n".join(lines)


def render_markdown(data: ReportData, plots: dict[str, Path], base: Path) -> str:
    names = ", ".join(f"`{data.name(r)}`" for r in data.run_ids)
    grids = all_grids(data)
    out = [f"# proofflow report: {names}", "",
           f"Generated {datetime.now(UTC):%Y-%m-%d %H:%M UTC}.", ""]
    titles = {"pass_at_k": "pass@k, coverage and maj@k vs samples",
              "tokens_of_pass": "Tokens-of-pass", "cost_of_pass": "Cost-of-pass",
              "tokens_by_stage": "Tokens by stage", **AGENT_TITLES}
    # Summary first, then the plots, then the detailed tables.
    for grid in grids[:1]:
        out += [f"## {grid.title}", "", markdown_table(grid), "", grid.note, ""]
    out += ["## Plots", ""]
    for key, path in plots.items():
        out += [f"### {titles.get(key, key)}", "", f"![{titles.get(key, key)}]({path.relative_to(base)})", ""]
    for grid in grids[1:]:
        out += [f"## {grid.title}", "", markdown_table(grid), ""]
        if grid.note:
            out += [grid.note, ""]
    if data.conversations:
        out += ["## Conversations", "",
                "Rebuilt from the database, as `proofflow show RUN --problem ID --conversation` prints "
                "them: the messages as sent, each turn's thinking (not sent back) and tokens, each tool "
                "run's outcome and time.", ""]
        for conv in data.conversations:
            out += _conversation(data, conv)
    return "\n".join(out)


def _conversation(data: ReportData, conv: Conversation) -> list[str]:
    state = {True: "solved", False: "not solved", None: "no episodes"}[conv.solved]
    head = f"### `{data.name(conv.run_id)}` · problem `{conv.problem}` ({state})"
    body = fenced(conv.text) if conv.text else "No conversation stored (not an agent run, or not started)."
    return [head, "", body, ""]


def write_report(data: ReportData, out_dir: str | Path) -> ReportFiles:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    plots = write_plots(data, out)
    plots.update(write_agent_plots(data, out))
    md = out / "report.md"
    md.write_text(render_markdown(data, plots, out), encoding="utf-8")
    return ReportFiles(markdown=md, plots=plots)
