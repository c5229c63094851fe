"""Proof text heuristics: from a model's completion to the proof source a checker runs.

Plain functions of text and the problem (no checker, no Prefect), unit-tested in
tests/tasks/test_proof_text.py.
"""

from __future__ import annotations

import re

from proofflow.verifiers.formal import FormalProblem, normalize_ws, statement_core

_FENCE = re.compile(r"```[ \t]*([\w+-]*)[^\n]*\n(.*?)(?:```|\Z)", re.DOTALL)
_COQ_END = re.compile(r"(?:Qed|Defined|Admitted|Abort|Save\s+\w+)\s*\.\s*$")

_DECL = {
    "coq": re.compile(r"(?m)^\s*(?:Theorem|Lemma|Example|Corollary|Proposition|Fact|Remark|Definition|Fixpoint"
                      r"|Axiom|Parameter|Hypothesis|Variable|Inductive|Require|From|Section|Module)\b"),
    "lean": re.compile(r"(?m)^\s*(?:theorem|lemma|def|abbrev|example|axiom|variable|open|namespace|section"
                       r"|instance|noncomputable|private|@\[)"),
}


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
    core = statement_core(problem.statement, problem.backend)
    with_stmt = [b for b in blocks if core in normalize_ws(b)]
    text = with_stmt[0] if with_stmt else blocks[0] if blocks else completion
    header_lines = {ln.strip() for ln in problem.header.splitlines() if ln.strip()}
    text = "\n".join(ln for ln in text.splitlines() if ln.strip() not in header_lines).strip("\n")
    decl = _DECL[problem.backend].search(text) if blocks else None
    if decl:
        return text[decl.start():].strip("\n") + "\n"
    return assemble(problem, text)


def assemble(problem: FormalProblem, text: str) -> str:
    """Statement + proof, whatever part of it `text` already carries."""
    text = text.strip("\n")
    first = problem.statement.strip().split("\n")[0].strip()
    at = text.find(first) if first else -1
    if at >= 0:
        return text[at:].rstrip() + "\n"
    body = text.strip()
    if problem.backend == "coq":
        if not body.startswith("Proof"):
            body = "Proof.\n" + body
        if not _COQ_END.search(body):
            body = body + "\nQed."
        return problem.statement.strip() + "\n" + body + "\n"
    lines = [ln if ln.startswith("  ") else "  " + ln.lstrip() for ln in body.splitlines() if ln.strip()]
    stmt = problem.statement.rstrip()
    if not stmt.endswith("by"):
        stmt += " by"
    return stmt + "\n" + ("\n".join(lines) or "  sorry") + "\n"


def extract_tactic(completion: str, backend: str) -> str:
    """A hole's proof from a completion: the first code block or the text, without
    `Proof.` / `Qed.` wrappers (the hole sits inside an existing proof)."""
    blocks = fenced_blocks(completion)
    text = (blocks[0] if blocks else completion).strip()
    if backend == "coq":
        text = re.sub(r"^\s*Proof\s*\.", "", text)
        text = re.sub(r"(?:Qed|Defined|Admitted)\s*\.\s*$", "", text).strip()
    else:
        text = re.sub(r"^\s*by\b", "", text).strip()
    return text or ("admit." if backend == "coq" else "sorry")


def clip(text: str, limit: int = 3000) -> str:
    """The last `limit` characters of a long text (errors and proofs end with what matters)."""
    return text if len(text) <= limit else "[... cut ...]\n" + text[-limit:]
