"""Report tables: the data (plain rows from storage.metrics), laid out as grids of strings
that both the terminal (rich) and the Markdown report render.

`collect()` runs every query once; the grid builders only format what it returned.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from rich.table import Table

from proofflow.report import display as fmt
from proofflow.report.conversations import DEFAULT_CAP, Conversation, collect_conversations
from proofflow.storage import metrics
from proofflow.storage.db import Store

Row = dict[str, Any]


@dataclass
class ReportData:
    """Everything a report shows, for one or more runs (in the order asked for)."""

    run_ids: list[str]
    summary: list[Row]
    problems: dict[str, list[Row]]
    pass_at_k: list[Row]
    coverage: list[Row]
    maj_at_k: list[Row]
    cost_of_pass_by_model: list[Row]
    usage: list[Row]
    verifier_audit: list[Row]
    verifier_agreement: list[Row]
    verdict_reasons: list[Row]
    names: dict[str, str] = field(default_factory=dict)
    tokens_of_pass_by_model: list[Row] = field(default_factory=list)
    # Agent runs (docs/agents.md): one row per episode, one per run; the token budget's stops.
    episodes: list[Row] = field(default_factory=list)
    agent_summary: list[Row] = field(default_factory=list)
    token_budget: list[Row] = field(default_factory=list)
    # The conversations asked for (report/conversations.py), in the report's order.
    conversations: list[Conversation] = field(default_factory=list)

    def priced(self) -> bool:
        """Whether any (run, model) has a known cost-of-pass (a price was configured)."""
        return any(r["cost_of_pass"] is not None for r in self.cost_of_pass_by_model)

    def name(self, run_id: str) -> str:
        return self.names.get(run_id, run_id)


def collect(store: Store, run_ids: Sequence[str], with_problems: bool = True,
            conversations: Sequence[str] = (), conversation_cap: int = DEFAULT_CAP) -> ReportData:
    """`conversations`: problem ids, or solved / unsolved / all (up to `conversation_cap`
    problems each), whose agent conversations the Markdown report shows."""
    ids = list(run_ids)
    summary = metrics.run_summary_rows(store, ids)
    episodes = metrics.episodes(store, ids)
    return ReportData(
        run_ids=ids,
        summary=summary,
        problems={r: metrics.problem_outcomes(store, r) for r in ids} if with_problems else {},
        pass_at_k=metrics.pass_at_k(store, ids),
        coverage=metrics.coverage(store, ids),
        maj_at_k=metrics.maj_at_k(store, ids),
        cost_of_pass_by_model=metrics.cost_of_pass_by_model(store, ids),
        usage=metrics.usage(store, ids),
        verifier_audit=metrics.verifier_audit(store, ids),
        verifier_agreement=metrics.verifier_agreement(store, ids),
        verdict_reasons=metrics.verdict_reasons(store, ids),
        names={r["run_id"]: r["name"] for r in summary},
        tokens_of_pass_by_model=metrics.tokens_of_pass_by_model(store, ids),
        episodes=episodes,
        agent_summary=metrics.agent_summary(store, ids),
        token_budget=metrics.token_budget(store, ids),
        conversations=collect_conversations(store, ids, episodes, conversations, conversation_cap)
        if conversations else [],
    )


@dataclass(frozen=True)
class Grid:
    title: str
    headers: list[str]
    rows: list[list[str]]
    # Columns holding numbers (right-aligned when rendered).
    numeric: frozenset[int] = frozenset()
    note: str = ""


# -- run summary: one column per run, so that several runs read side by side ------------

SummaryField = tuple[str, Callable[[Row], str]]

SUMMARY_FIELDS: list[SummaryField] = [
    ("strategy", lambda r: fmt.plain(r["strategy"])),
    ("model", lambda r: fmt.plain(r["model"])),
    ("status", lambda r: fmt.plain(r["status"])),
    ("solved (any sample passed)", lambda r: fmt.fraction(r["solved"], r["problems"])),
    ("finished", lambda r: fmt.fraction(r["done"], r["problems"])),
    ("selected answer correct", lambda r: fmt.fraction(r["correct"], r["done"])),
    ("N (first attempts per problem)", lambda r: fmt.count(r["n"])),
    ("pass@1", lambda r: fmt.rate(r["pass_at_1"])),
    ("pass@N", lambda r: fmt.rate(r["pass_at_n"])),
    ("maj@N", lambda r: fmt.rate(r["maj_at_n"])),
    ("samples (all stages)", lambda r: fmt.count(r["samples"])),
    ("prompt tokens", lambda r: fmt.count(r["prompt_tokens"])),
    ("completion tokens", lambda r: fmt.count(r["completion_tokens"])),
    ("cost", lambda r: fmt.money(r["cost"])),
    ("cost-of-pass (per first attempt)", lambda r: fmt.money(r["cost_of_pass"])),
    ("cost per correct problem", lambda r: fmt.money(r["cost_of_pass_run"])),
    ("tokens-of-pass (per first attempt)", lambda r: fmt.tokens(r.get("tokens_of_pass"))),
    ("tokens per correct problem", lambda r: fmt.tokens(r.get("tokens_per_correct"))),
]


def summary_grid(summary: list[Row]) -> Grid:
    return Grid(
        title="Run summary",
        headers=["", *[r["name"] for r in summary]],
        rows=[[label, *[get(r) for r in summary]] for label, get in SUMMARY_FIELDS],
        numeric=frozenset(range(1, len(summary) + 1)),
        note="pass@k and maj@k count first-attempt (generate) samples; 'solved' counts "
             "repairs too. n/a: unknown (e.g. no price configured); ∞: priced, nothing passed.",
    )


def problem_grid(name: str, rows: list[Row], limit: int | None = None) -> Grid:
    shown = rows if limit is None else rows[:limit]
    body = []
    for i, r in enumerate(shown, 1):
        first = (f"{r['first_pass_stage']} r{r['first_pass_round']}"
                 if r["first_pass_sample_id"] else "—")
        body.append([
            str(i), fmt.short(r["source_id"] or r["problem_id"], 20),
            fmt.short(r["reference_answer"], 14), fmt.short(r["selected_answer"], 14),
            "…" if not r["done"] else ("✓" if r["correct"] else "✗"),
            fmt.count(r["samples"]), fmt.count(r["passed"]), first,
            fmt.count(r["prompt_tokens"] + r["completion_tokens"]), fmt.money(r["cost"]),
        ])
    note = f"first {limit} of {len(rows)} problems" if limit is not None and len(rows) > limit else ""
    return Grid(
        title=f"Problems — {name}",
        headers=["#", "problem", "reference", "selected", "correct", "samples", "passed",
                 "first pass", "tokens", "cost"],
        rows=body, numeric=frozenset({0, 5, 6, 8, 9}),
        note=note + ("; " if note else "") + "correct: ✓/✗ selected answer, … not finished yet",
    )


def pass_at_k_grid(data: ReportData) -> Grid:
    """pass@k (estimate), observed coverage and maj@k at k = 1, 2, 4, …, N, per run."""
    by = {}
    for name, rows in (("pass", data.pass_at_k), ("cov", data.coverage), ("maj", data.maj_at_k)):
        for r in rows:
            by[(name, r["run_id"], r["k"])] = r
    n_max = max((r["k"] for r in data.pass_at_k), default=0)
    headers = ["k"]
    for run_id in data.run_ids:
        nm = data.name(run_id)
        headers += [f"{nm} pass@k", f"{nm} coverage", f"{nm} maj@k"]
    body = []
    for k in fmt.k_points(n_max):
        line = [str(k)]
        for run_id in data.run_ids:
            p, c, m = by.get(("pass", run_id, k)), by.get(("cov", run_id, k)), by.get(("maj", run_id, k))
            line += [fmt.rate(p["pass_at_k"]) if p else fmt.NA,
                     fmt.rate(c["coverage"]) if c else fmt.NA,
                     fmt.rate(m["maj_at_k"]) if m else fmt.NA]
        body.append(line)
    return Grid(
        title="pass@k, coverage and maj@k", headers=headers, rows=body,
        numeric=frozenset(range(len(headers))),
        note="pass@k: unbiased estimate; coverage: share of all the run's problems solved "
             "within their first k samples; maj@k: majority answer of the first k correct.",
    )


def cost_grid(data: ReportData) -> Grid:
    tokens = {(r["run_id"], r["model"]): r for r in data.tokens_of_pass_by_model}
    body = []
    for r in data.cost_of_pass_by_model:
        t = tokens.get((r["run_id"], r["model"]), {})
        body.append([data.name(r["run_id"]), fmt.plain(r["model"]), fmt.count(r["attempts"]),
                     fmt.rate(r["success_rate"]), fmt.money(r["attempt_cost"]),
                     fmt.money(r["cost_of_pass"]), fmt.tokens(t.get("attempt_tokens")),
                     fmt.tokens(t.get("tokens_of_pass"))])
    return Grid(title="Cost-of-pass and tokens-of-pass by model",
                headers=["run", "model", "attempts", "success rate", "cost / attempt", "cost-of-pass",
                         "tokens / attempt", "tokens-of-pass"],
                rows=body, numeric=frozenset({2, 3, 4, 5, 6, 7}),
                note="cost-of-pass = mean cost of one first attempt ÷ share of attempts that pass; "
                     "tokens-of-pass the same in tokens (prompt + completion), known without prices.")


def usage_grid(data: ReportData) -> Grid:
    body = [[data.name(r["run_id"]), r["stage"], fmt.plain(r["model"]), fmt.count(r["calls"]),
             fmt.count(r["failed_calls"]), fmt.count(r["samples"]), fmt.count(r["prompt_tokens"]),
             fmt.count(r["completion_tokens"]), fmt.money(r["cost"])]
            for r in data.usage]
    return Grid(title="Tokens and cost by stage and model",
                headers=["run", "stage", "model", "calls", "failed", "samples", "prompt tok",
                         "completion tok", "cost"],
                rows=body, numeric=frozenset({3, 4, 5, 6, 7, 8}),
                note="Counted from the model calls (failed ones included) where the run "
                     "recorded them, else from the samples (calls: n/a).")


def audit_grid(data: ReportData) -> Grid:
    body = [[data.name(r["run_id"]), r["verifier"], r["truth_verifier"], fmt.count(r["samples"]),
             fmt.count(r["true_accept"]), fmt.count(r["false_accept"]), fmt.count(r["false_reject"]),
             fmt.count(r["true_reject"]), fmt.rate(r["false_accept_rate"]),
             fmt.rate(r["false_reject_rate"]), fmt.rate(r["precision"])]
            for r in data.verifier_audit]
    return Grid(title="Verifier audit against ground truth",
                headers=["run", "verifier", "truth", "samples", "true acc", "false acc",
                         "false rej", "true rej", "false-accept rate", "false-reject rate",
                         "precision"],
                rows=body, numeric=frozenset(range(3, 11)),
                note="false-accept rate = passes the ground truth rejects ÷ all it rejects.")


def agreement_grid(data: ReportData) -> Grid:
    body = [[data.name(r["run_id"]), r["verifier_a"], r["verifier_b"], fmt.count(r["samples"]),
             fmt.count(r["both_pass"]), fmt.count(r["a_pass_b_not"]), fmt.count(r["b_pass_a_not"]),
             fmt.count(r["neither_pass"]), fmt.rate(r["agreement"])]
            for r in data.verifier_agreement]
    return Grid(title="Verifier agreement (pairs judging the same samples)",
                headers=["run", "A", "B", "samples", "both pass", "A only", "B only", "neither",
                         "agreement"],
                rows=body, numeric=frozenset(range(3, 9)))


def reasons_grid(data: ReportData) -> Grid:
    body = [[data.name(r["run_id"]), r["verifier"], r["outcome"], r["reason"] or "—",
             fmt.count(r["verdicts"]), fmt.rate(r["share"])]
            for r in data.verdict_reasons]
    return Grid(title="Verdicts by outcome and reason",
                headers=["run", "verifier", "outcome", "reason", "verdicts", "share"],
                rows=body, numeric=frozenset({4, 5}),
                note="share: of that verifier's verdicts in the run.")


# -- agents and budgets: one column per run, like the summary ---------------------------

AGENT_FIELDS: list[SummaryField] = [
    ("episodes", lambda r: fmt.count(r.get("episodes"))),
    ("solved episodes", lambda r: fmt.count(r.get("solved_episodes"))),
    ("pass@1 over episodes", lambda r: fmt.rate(r.get("pass_at_1"))),
    ("turns per episode", lambda r: fmt.rate(r.get("turns_per_episode"), 2)),
    ("turns-to-solve (solved episodes)", lambda r: fmt.rate(r.get("turns_to_solve"), 2)),
    ("tokens-to-solve (solved episodes)", lambda r: fmt.tokens(r.get("tokens_to_solve"))),
    ("tool calls (refused)", lambda r: f"{fmt.count(r.get('tool_calls'))} ({fmt.count(r.get('refused_calls'))})"
     if r.get("episodes") else fmt.NA),
    ("reasoning share of completion tokens", lambda r: fmt.rate(r.get("reasoning_share"))),
    ("turns cut in their thinking (budget_exhausted)", lambda r: fmt.count(r.get("budget_exhausted"))),
    ("how episodes ended", lambda r: ", ".join(f"{k} {v}" for k, v in sorted((r.get("ended") or {}).items()))
     or fmt.NA),
    ("episodes ended by the token budget", lambda r: fmt.count(r.get("episodes_stopped", 0))),
    ("problems whose repairs the token budget stopped", lambda r: fmt.count(r.get("problems_stopped", 0))),
]


def agent_grid(data: ReportData) -> Grid | None:
    """Episodes and the per-problem token budget per run; None when no run has either."""
    agents = {r["run_id"]: r for r in data.agent_summary}
    budget = {r["run_id"]: r for r in data.token_budget}
    if not agents and not budget:
        return None
    rows = [{**agents.get(run_id, {}), **budget.get(run_id, {})} for run_id in data.run_ids]
    return Grid(
        title="Agent episodes and token budgets",
        headers=["", *[data.name(r) for r in data.run_ids]],
        rows=[[label, *[get(r) for r in rows]] for label, get in AGENT_FIELDS],
        numeric=frozenset(range(1, len(data.run_ids) + 1)),
        note="An episode is one conversation; pass@k over episodes is the pass@k table of an agent run. "
             "budget_exhausted: a turn stopped on length inside its thinking (no answer, not a wrong one); "
             "token budget: max_tokens_per_problem ([solve], [solve.tir], [prove.agent]).",
    )


def all_grids(data: ReportData, problem_limit: int | None = None) -> list[Grid]:
    grids = [summary_grid(data.summary), pass_at_k_grid(data), cost_grid(data), usage_grid(data)]
    agents = agent_grid(data)
    if agents is not None:
        grids.append(agents)
    if data.verifier_audit:
        grids.append(audit_grid(data))
    if data.verifier_agreement:
        grids.append(agreement_grid(data))
    if data.verdict_reasons:
        grids.append(reasons_grid(data))
    for run_id, rows in data.problems.items():
        grids.append(problem_grid(data.name(run_id), rows, problem_limit))
    return grids


def rich_table(grid: Grid) -> Table:
    table = Table(title=grid.title, caption=grid.note or None, caption_justify="left")
    for i, header in enumerate(grid.headers):
        table.add_column(header, justify="right" if i in grid.numeric else "left",
                         overflow="fold")
    for row in grid.rows:
        table.add_row(*row)
    return table
