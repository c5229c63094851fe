"""Formal problem sets: miniF2F (both Lean 4 JSONL layouts) and a plain JSONL.
(Checking a proof is verifiers/; this module only reads problem files.)

Formats, detected per line:
- DeepSeek miniF2F: {name, split, informal_prefix, formal_statement (`... := by\\n`), goal, header}
- yangky11 miniF2F: {name, split, header, formal_statement (`... := by sorry`)}: the proof
  (`sorry`) is stripped so the statement ends in `:= by`, as in the DeepSeek file
- plain:            {id, header, statement, informal?, split?, backend?}  (backend: a registered
                    language, verifiers/registry.py; without the field, the caller's default)

The whole file is validated before any work: the first bad line raises ProblemFileError
naming the file, the line and the field.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from proofflow.problems.answer_set import example_path
from proofflow.problems.jsonl import DEFAULT_MAX_LINE_BYTES, Duplicates, ProblemFileError, read_jsonl
from proofflow.verifiers.formal import FormalProblem
from proofflow.verifiers.registry import backend as backend_named
from proofflow.verifiers.registry import languages

# miniF2F's statements are Lean 4; a plain line without a `backend` field is read as this
# unless the caller says otherwise (`proofflow check --backend`, `proofflow prove --backend`).
MINIF2F_BACKEND = DEFAULT_BACKEND = "lean"
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


def _theorem_name(statement: str, backend: str, path: Path, line: int, key: str, assumed: bool = False) -> str:
    chosen = backend_named(backend)
    name = chosen.theorem_name(statement)
    if name is None:
        # Say which language the line was read as, and why: a plain line without a
        # `backend` field is read as the caller's default.
        why = " (the line has no `backend` field)" if assumed else ""
        raise ProblemFileError(path, line, key,
                               f"does not start with {chosen.statement_form} as a {backend} statement{why}")
    return name


def strip_lean_proof(formal_statement: str) -> str:
    """`theorem foo ... := by sorry` → `theorem foo ... := by` (statement exactly as given
    otherwise)."""
    s = formal_statement.rstrip()
    s = re.sub(r"\s*sorry$", "", s)
    return s


def parse_formal_problem(obj: Any, path: Path, line: int, backend: str | None = None) -> FormalProblem:
    """One line as a problem; `backend` is how a plain line without a `backend` field is
    read (default lean)."""
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
        if _theorem_name(statement, MINIF2F_BACKEND, path, line, "formal_statement") != name:
            raise ProblemFileError(path, line, "name", f"{name!r} is not the theorem's name in formal_statement")
        informal = obj.get("informal_prefix") or ""
        m = _INFORMAL_COMMENT.match(informal)
        informal = m.group(1) if m else informal
        skip = {"name", "split", "header", "formal_statement", "informal_prefix"}
        meta = {k: v for k, v in obj.items() if k not in skip}
        meta["format"] = fmt
        return FormalProblem(name=name, header=header, statement=statement, backend=MINIF2F_BACKEND,
                             informal=informal, split=split, source=str(path), metadata=meta)
    if "statement" in obj:  # plain
        assumed = "backend" not in obj
        chosen = obj.get("backend", backend or DEFAULT_BACKEND)
        if chosen not in languages():
            known = " or ".join(repr(b) for b in languages())
            raise ProblemFileError(path, line, "backend", f"expected {known}, got {chosen!r}")
        statement = _text(obj, "statement", path, line).strip()
        header = _text(obj, "header", path, line, allow_empty=True)
        if isinstance(obj.get("id"), int) and not isinstance(obj.get("id"), bool):
            obj = {**obj, "id": str(obj["id"])}  # `"id": 0` is an id like any other
        pid = _text(obj, "id", path, line)
        name = _theorem_name(statement, chosen, path, line, "statement", assumed)
        informal = obj.get("informal", "")
        if not isinstance(informal, str):
            raise ProblemFileError(path, line, "informal", "expected a string")
        wrong = backend_named(chosen).statement_error(statement)
        if wrong:
            raise ProblemFileError(path, line, "statement", wrong)
        meta = {k: v for k, v in obj.items() if k not in {"id", "header", "statement", "informal", "split", "backend"}}
        meta.update(format="plain", id=pid)
        return FormalProblem(name=name, header=header, statement=statement, backend=chosen,
                             informal=informal, split=split, source=str(path), metadata=meta)
    raise ProblemFileError(path, line, "statement", "missing: expected miniF2F {name, header, "
                           "formal_statement} or plain {id, header, statement}")


def load_formal_problems(path: str | Path, limit: int | None = None, split: str | None = None, *,
                         dedupe: bool = False, max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
                         backend: str | None = None) -> list[FormalProblem]:
    """Load and validate a whole file (raises ProblemFileError on the first bad line). A
    repeated theorem name or id is an error naming both lines, unless `dedupe` keeps the
    first (jsonl.Duplicates). `backend`: how a plain line without a `backend` field is read
    (default lean; `proofflow check --backend`)."""
    path = Path(path)
    problems: list[FormalProblem] = []
    duplicates = Duplicates(path, dedupe)
    for number, obj in read_jsonl(path, max_line_bytes):
        p = parse_formal_problem(obj, path, number, backend)
        keys = [(f"name\0{p.name}", f"theorem name {p.name!r}")]
        if p.metadata.get("id") not in (None, ""):
            keys.insert(0, (f"id\0{p.metadata['id']}", f"id {p.metadata['id']!r}"))
        if duplicates.admit(number, keys):
            problems.append(p)
    duplicates.report()
    if not problems:
        raise ProblemFileError(path, None, None, "no problems in file")
    if split is not None:
        problems = [p for p in problems if p.split == split]
    return problems[:limit] if limit else problems


def coq_examples() -> list[FormalProblem]:
    """The bundled Coq problem set (proofflow/problems/examples/coq_examples.jsonl)."""
    return load_formal_problems(example_path("coq_examples"))
