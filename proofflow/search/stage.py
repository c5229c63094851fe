"""The step search as a stage: model-proposed tactics, the search tree as rows, resumable.

- An expansion of a state is one model request of K samples (n=K, with each sample's
  log-probability from vLLM's `logprobs`): K sample rows of stage `search` whose
  `parent_id` is the node id of the state expanded and `idx` the choice. Node ids are
  deterministic (run, problem, origin, tactic path), so are the sample ids: a rerun finds
  a stored expansion and uses it instead of asking the model again (`ModelProposer`).
- Every tactic tried is a `search_nodes` row (storage/records.py SearchNodeRow): what it
  did (the new goals, the error, or the node it merged into); the root of each goal too.
- The search decides nothing: a proved path is assembled (`assemble`) and checked by the
  whole-file checker and its audit by the caller.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from proofflow.keys import sample_id, seed_for
from proofflow.llm.client import Request, Response
from proofflow.search.best_first import (
    Pause,
    ProofStateInterface,
    Proposal,
    Score,
    SearchBudget,
    SearchNode,
    SearchResult,
    Tried,
    best_first_search,
    cumulative_logprob,
)
from proofflow.storage.records import CallRow, Row, SampleRow, SearchNodeRow
from proofflow.tasks.context import RunContext
from proofflow.tasks.sampling import Plan, sample_rows
from proofflow.verifiers.lean.proofstate import TacticState

STAGE = "search"
# The default prompt (the `search` strategy fills its own prompts/tactic.txt, the same text).
DEFAULT_PROMPT = ("You are proving a theorem in Lean 4 (core Lean only: no Mathlib, use `Nat` and `Int`), "
                  "one tactic at a time.\n\nCurrent proof state:\n\n{goals}\n\n"
                  "Reply with the single next tactic only (one line, no explanation, no `by`).\n")
MAX_TACTIC_CHARS = 400
_FENCE = re.compile(r"```[^\n]*\n(.*?)(?:```|$)", re.S)


def node_key(run_id: str, problem_id: str, origin: str, path: tuple[str, ...]) -> str:
    """A search node's id: where it sits (run, problem, goal searched, tactic path)."""
    h = hashlib.sha256(json.dumps([run_id, problem_id, origin, list(path)], ensure_ascii=False).encode())
    return "n_" + h.hexdigest()[:20]


def tactic_of(completion: str | None) -> str:
    """The tactic a completion proposes: the first line of its first code block, or of
    the text; a leading `by`, a `Tactic:` label and wrapping backticks removed. Untrusted
    text: it only ever reaches Lean as a tactic to parse, never a shell or SQL."""
    text = completion or ""
    m = _FENCE.search(text)
    if m:
        text = m.group(1)
    for line in text.splitlines():
        line = re.sub(r"^(?:tactic\s*:|lean\s*:)\s*", "", line.strip(), flags=re.I)
        line = re.sub(r"^by\s+", "", line.strip().strip("`").strip())
        if line and line.lower() not in ("lean", "lean4"):
            return line[:MAX_TACTIC_CHARS]
    return ""


def stored_expansions(samples: Iterable[SampleRow]) -> dict[str, list[SampleRow]]:
    """Stored expansion samples by the node they expanded, in choice order."""
    out: dict[str, list[SampleRow]] = {}
    for s in samples:
        if s.stage == STAGE and s.parent_id:
            out.setdefault(s.parent_id, []).append(s)
    for rows in out.values():
        rows.sort(key=lambda r: r.idx)
    return out


Ask = Callable[[Request], Response]


class ModelProposer:
    """`propose(node)` for one goal's search: the stored expansion of the node when there
    is one (no model call), else one request of `k` samples with log-probabilities. After
    `new_expansions` requests it raises Pause (the caller stores the rows and resumes)."""

    def __init__(self, ctx: RunContext, problem_id: str, origin: str, k: int, ask: Ask,
                 stored: dict[str, list[SampleRow]], params: dict[str, object] | None = None,
                 new_expansions: int | None = None, prompt: Callable[[SearchNode], str] | None = None):
        self.ctx, self.problem_id, self.origin, self.k = ctx, problem_id, origin, k
        self.ask = ask
        self.stored = stored
        self.params = params or {}
        self.new_expansions = new_expansions
        self.prompt = prompt or (lambda node: DEFAULT_PROMPT.format(goals=node.state.pp))
        self.rows: list[Row] = []
        self.requests = 0            # model requests made by this proposer
        self.reused = 0              # expansions served from storage
        self.samples_of: dict[str, list[SampleRow]] = {}

    def key(self, path: tuple[str, ...]) -> str:
        return node_key(self.ctx.run_id, self.problem_id, self.origin, path)

    def __call__(self, node: SearchNode) -> list[Proposal]:
        nid = self.key(node.path)
        rows = self.stored.get(nid)
        if rows:
            self.reused += 1
        else:
            if self.new_expansions is not None and self.requests >= self.new_expansions:
                raise Pause
            rows = self._ask(node, nid)
            self.stored[nid] = rows
        self.samples_of[nid] = rows
        return [Proposal(tactic_of(r.completion), r.logprob if r.logprob is not None else 0.0,
                         r.completion_tokens or 0) for r in rows]

    def _ask(self, node: SearchNode, nid: str) -> list[SampleRow]:
        prompt = self.prompt(node)
        ids = [sample_id(self.ctx.run_id, self.problem_id, STAGE, nid, i) for i in range(self.k)]
        request = Request(prompt=prompt, n=self.k, seed=seed_for(ids[0]), logprobs=True,
                          context={"run_id": self.ctx.run_id, "problem_id": self.problem_id, "stage": STAGE})
        response = self.ask(request)
        self.requests += 1
        self.rows.extend(c for c in response.calls if isinstance(c, CallRow))
        plan = Plan(self.problem_id, prompt, STAGE, ids, list(range(self.k)), nid, node.depth)
        made = sample_rows(self.ctx, plan, response, self.params)
        made = [dataclasses.replace(r, logprob=c.logprob) for r, c in zip(made, response.choices)]
        self.rows.extend(made)
        return made


@dataclass
class GoalSearch:
    """One goal's search and what it produced."""

    origin: str
    result: SearchResult
    rows: list[Row]
    requests: int
    reused: int


def search_goal(ctx: RunContext, problem_id: str, origin: str, root: TacticState, env: ProofStateInterface,
                proposer: ModelProposer, budget: SearchBudget, score: Score = cumulative_logprob) -> GoalSearch:
    """Run the best-first search on one goal with `proposer`; the rows are the expansion
    samples it asked for and the tree's nodes (every tried tactic, the root)."""
    key = proposer.key
    nodes_out: list[Row] = [SearchNodeRow(
        node_id=key(()), run_id=ctx.run_id, problem_id=problem_id, origin=origin, parent_node_id=None,
        sample_id=None, tactic=None, depth=0, logprob=None, score=0.0, status="root",
        goals=json.dumps(list(root.goals), ensure_ascii=False), error=None, merged_into=None)]

    def on_expansion(node: SearchNode, tried: list[Tried]) -> None:
        parent = key(node.path)
        by_tactic: dict[str, str] = {}
        for s in proposer.samples_of.get(parent, []):
            by_tactic.setdefault(tactic_of(s.completion), s.sample_id)
        for t in tried:
            path = (*node.path, t.tactic)
            goals = None
            if t.outcome in ("open", "duplicate"):
                goals = json.dumps(list(t.goals), ensure_ascii=False)
            elif t.outcome == "proved":
                goals = "[]"
            merged = key(t.child_path) if t.outcome == "duplicate" and t.child_path is not None else None
            nodes_out.append(SearchNodeRow(
                node_id=key(path), run_id=ctx.run_id, problem_id=problem_id, origin=origin,
                parent_node_id=parent, sample_id=by_tactic.get(t.tactic), tactic=t.tactic, depth=len(path),
                logprob=t.logprob, score=node.logprob_sum + t.logprob, status=t.outcome, goals=goals,
                error=(t.error or "")[:2000] or None, merged_into=merged))

    result = best_first_search(root, env, proposer, budget, score, on_expansion=on_expansion)
    return GoalSearch(origin, result, [*proposer.rows, *nodes_out], proposer.requests, proposer.reused)
