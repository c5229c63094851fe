"""Proof text heuristics: from a model's completion to the proof source a checker runs.

Plain functions of text and the problem (no checker, no Prefect), unit-tested in
tests/tasks/test_proof_text.py.
"""

from __future__ import annotations

import re

from proofflow.verifiers.formal import FormalBackend, FormalProblem, normalize_ws
from proofflow.verifiers.registry import backend as backend_named

_FENCE = re.compile(r"```[ \t]*([\w+-]*)[^\n]*\n(.*?)(?:```|\Z)", re.DOTALL)


def fenced_blocks(text: str) -> list[str]:
    """The bodies of the ``` code blocks in `text`, in order (an unclosed last block runs
    to the end)."""
    return [m.group(2) for m in _FENCE.finditer(text)]


def extract_proof(completion: str, problem: FormalProblem) -> str:
    """The proof source a completion means. A code block (```coq / ```lean / ```) that
    contains the statement wins, else the first block; a block is kept whole when it
    declares things (helper lemmas, and also cheats such as an Axiom, which the audit
    must see). Without a block: the text from the statement on. A bare tactic body gets
    the statement put in front. Header lines the model repeated are dropped (the checker
    runs the header itself)."""
    blocks = fenced_blocks(completion)
    backend = backend_named(problem.backend)
    core = backend.statement_core(problem.statement)
    with_stmt = [b for b in blocks if core in normalize_ws(b)]
    text = with_stmt[0] if with_stmt else blocks[0] if blocks else completion
    header_lines = {ln.strip() for ln in problem.header.splitlines() if ln.strip()}
    text = "\n".join(ln for ln in text.splitlines() if ln.strip() not in header_lines).strip("\n")
    decl = backend.declarations_start(text) if blocks else None
    if decl is not None:
        return text[decl:].strip("\n") + "\n"
    return assemble(problem, text)


def assemble(problem: FormalProblem, text: str) -> str:
    """Statement + proof, whatever part of it `text` already carries."""
    text = text.strip("\n")
    first = problem.statement.strip().split("\n")[0].strip()
    at = text.find(first) if first else -1
    if at >= 0:
        return text[at:].rstrip() + "\n"
    return backend_named(problem.backend).assemble(problem.statement, text.strip())


def extract_tactic(completion: str, backend: str | FormalBackend) -> str:
    """A hole's proof from a completion: the first code block or the text, without the
    wrappers a hole inside an existing proof must not repeat (Coq `Proof.` / `Qed.`, Lean
    `by`); nothing usable is a hole again."""
    blocks = fenced_blocks(completion)
    return backend_named(backend).hole_text((blocks[0] if blocks else completion).strip())


def clip(text: str, limit: int = 3000) -> str:
    """The last `limit` characters of a long text (errors and proofs end with what matters)."""
    return text if len(text) <= limit else "[... cut ...]\n" + text[-limit:]
