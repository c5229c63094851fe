"""Formal problem sets: miniF2F (both Lean 4 JSONL layouts) and a plain JSONL.
(Checking a proof is verifiers/; this module only reads problem files.)

Formats, detected per line:
- DeepSeek miniF2F: {name, split, informal_prefix, formal_statement (`... := by\\n`), goal, header}
- yangky11 miniF2F: {name, split, header, formal_statement (`... := by sorry`)}: the proof
  (`sorry`) is stripped so the statement ends in `:= by`, as in the DeepSeek file
- plain:            {id, header, statement, informal?, split?, backend?}  (backend: lean | coq)

The whole file is validated before any work: the first bad line raises ProblemFileError
naming the file, the line and the field.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from proofflow.problems.answer_set import example_path
from proofflow.problems.jsonl import ProblemFileError, read_jsonl
from proofflow.verifiers.formal import Backend, FormalProblem

_LEAN_NAME = re.compile(r"^\s*(?:theorem|lemma)\s+([^\s(:{\[]+)")
_COQ_NAME = re.compile(r"^\s*(?:Theorem|Lemma|Example|Corollary|Proposition|Fact|Remark)\s+([^\s(:]+)")
_INFORMAL_COMMENT = re.compile(r"^\s*/--?\s*(.*?)\s*-/\s*$", re.S)


def _text(obj: dict[str, Any], key: str, path: Path, line: int, *, allow_empty: bool = False) -> str:
    value = obj.get(key)
    if value is None:
        raise ProblemFileError(path, line, key, "missing")
    if not isinstance(value, str):
        raise ProblemFileError(path, line, key, f"expected a string, got {type(value).__name__}")
    if not allow_empty and not value.strip():
        raise ProblemFileError(path, line, key, "is empty")
    return value


def _theorem_name(statement: str, backend: Backend, path: Path, line: int, key: str) -> str:
    m = (_LEAN_NAME if backend == "lean" else _COQ_NAME).match(statement)
    if not m:
        want = "`theorem NAME ...`" if backend == "lean" else "`Theorem NAME : ... .`"
        raise ProblemFileError(path, line, key, f"does not start with {want}")
    return m.group(1)


def strip_lean_proof(formal_statement: str) -> str:
    """`theorem foo ... := by sorry` → `theorem foo ... := by` (statement exactly as given
    otherwise)."""
    s = formal_statement.rstrip()
    s = re.sub(r"\s*sorry$", "", s)
    return s


def parse_formal_problem(obj: Any, path: Path, line: int) -> FormalProblem:
    if not isinstance(obj, dict):
        raise ProblemFileError(path, line, None, f"expected a JSON object, got {type(obj).__name__}")
    split = obj.get("split")
    if "formal_statement" in obj:  # miniF2F, either layout
        raw = _text(obj, "formal_statement", path, line)
        header = _text(obj, "header", path, line)
        if raw.rstrip().endswith("sorry"):
            statement, fmt = strip_lean_proof(raw), "minif2f-yangky11"
        else:
            statement, fmt = raw.rstrip(), "minif2f-deepseek"
        if not statement.endswith(":= by"):
            raise ProblemFileError(path, line, "formal_statement", "expected it to end in `:= by` (optionally `sorry`)")
        name = _text(obj, "name", path, line)
        if _theorem_name(statement, "lean", path, line, "formal_statement") != name:
            raise ProblemFileError(path, line, "name", f"{name!r} is not the theorem's name in formal_statement")
        informal = obj.get("informal_prefix") or ""
        m = _INFORMAL_COMMENT.match(informal)
        informal = m.group(1) if m else informal
        skip = {"name", "split", "header", "formal_statement", "informal_prefix"}
        meta = {k: v for k, v in obj.items() if k not in skip}
        meta["format"] = fmt
        return FormalProblem(name=name, header=header, statement=statement, backend="lean",
                             informal=informal, split=split, source=str(path), metadata=meta)
    if "statement" in obj:  # plain
        backend = obj.get("backend", "lean")
        if backend not in ("lean", "coq"):
            raise ProblemFileError(path, line, "backend", f"expected 'lean' or 'coq', got {backend!r}")
        statement = _text(obj, "statement", path, line).strip()
        header = _text(obj, "header", path, line, allow_empty=True)
        if isinstance(obj.get("id"), int) and not isinstance(obj.get("id"), bool):
            obj = {**obj, "id": str(obj["id"])}  # `"id": 0` is an id like any other
        pid = _text(obj, "id", path, line)
        name = _theorem_name(statement, backend, path, line, "statement")
        informal = obj.get("informal", "")
        if not isinstance(informal, str):
            raise ProblemFileError(path, line, "informal", "expected a string")
        if backend == "coq" and not statement.endswith("."):
            raise ProblemFileError(path, line, "statement", "a Coq statement ends with '.'")
        meta = {k: v for k, v in obj.items() if k not in {"id", "header", "statement", "informal", "split", "backend"}}
        meta.update(format="plain", id=pid)
        return FormalProblem(name=name, header=header, statement=statement, backend=backend,
                             informal=informal, split=split, source=str(path), metadata=meta)
    raise ProblemFileError(path, line, "statement", "missing: expected miniF2F {name, header, "
                           "formal_statement} or plain {id, header, statement}")


def load_formal_problems(path: str | Path, limit: int | None = None, split: str | None = None) -> list[FormalProblem]:
    """Load and validate a whole file (raises ProblemFileError on the first bad line)."""
    path = Path(path)
    problems: list[FormalProblem] = []
    names: dict[str, int] = {}
    for number, obj in read_jsonl(path):
        p = parse_formal_problem(obj, path, number)
        if p.name in names:
            raise ProblemFileError(path, number, "name",
                                   f"duplicate theorem name {p.name!r} (first on line {names[p.name]})")
        names[p.name] = number
        problems.append(p)
    if not problems:
        raise ProblemFileError(path, None, None, "no problems in file")
    if split is not None:
        problems = [p for p in problems if p.split == split]
    return problems[:limit] if limit else problems


def coq_examples() -> list[FormalProblem]:
    """The bundled Coq problem set (proofflow/problems/examples/coq_examples.jsonl)."""
    return load_formal_problems(example_path("coq_examples"))
