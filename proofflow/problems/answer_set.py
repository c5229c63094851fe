"""Answer problem sets: problems with a final answer, loaded from JSONL.

(Checking an answer is verifiers/answer/; this module only reads problem files.)

Accepted line formats (detected per line, so a file may mix them):
- plain:    {"id": ..., "problem": ..., "answer": ...}   (extra keys kept as metadata)
- GSM8K:    {"question": ..., "answer": "...worked solution...\\n#### 18"}
- MATH-500: {"problem": ..., "solution": ..., "answer": ..., "unique_id": ..., ...}
- chat (OpenAI evals): {"input": [{"role": ..., "content": ...}, ...], "ideal": ...}: the
  messages (a system prompt, few-shot turns, the question last) start the conversation
  (metadata["messages"]); the statement is the last user message; `ideal` (or the first
  of a list of ideals) is the answer.

The whole file is validated before anything else happens, and the first bad line stops
the load with the file, the line number and the field named.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from proofflow.keys import problem_id
from proofflow.problems.jsonl import DEFAULT_MAX_LINE_BYTES, Duplicates, ProblemFileError, read_jsonl

_GSM8K_FINAL = re.compile(r"####\s*(?P<answer>.+?)\s*$", re.S)


@dataclass(frozen=True)
class Problem:
    id: str                       # content hash: stable across files and runs
    source: str                   # file it came from
    source_id: str                # its id in that file (or "line N")
    statement: str
    reference_answer: str
    split: str | None = None
    kind: str = "answer"
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        """Short human name for logs and the Prefect UI."""
        return self.source_id if len(self.source_id) <= 40 else self.source_id[:37] + "..."


def example_path(name: str = "examples") -> Path:
    """Path of a bundled problem set (proofflow/problems/examples/NAME.jsonl)."""
    return Path(str(resources.files("proofflow.problems").joinpath("examples", f"{name}.jsonl")))


def _require_text(obj: dict[str, Any], key: str, path: Path, line: int) -> str:
    value = obj.get(key)
    if value is None:
        raise ProblemFileError(path, line, key, "missing")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise ProblemFileError(path, line, key, f"expected a string, got {type(value).__name__}")
    if not value.strip():
        raise ProblemFileError(path, line, key, "is empty")
    return value


def _source_id(obj: dict[str, Any], line: int) -> str:
    """The problem's id in its file: `id`, else MATH-500's `unique_id`, else "line N".
    Checked against None, not truthiness: `"id": 0` is a real id."""
    for key in ("id", "unique_id"):
        value = obj.get(key)
        if value is not None and value != "":
            return str(value)
    return f"line {line}"


def parse_problem(obj: Any, path: Path, line: int) -> Problem:
    if not isinstance(obj, dict):
        raise ProblemFileError(path, line, None, f"expected a JSON object, got {type(obj).__name__}")
    if "input" in obj and "problem" not in obj and "question" not in obj:  # chat (OpenAI evals)
        return _chat_problem(obj, path, line)
    if "question" in obj and "problem" not in obj:  # GSM8K
        statement = _require_text(obj, "question", path, line)
        worked = _require_text(obj, "answer", path, line)
        match = _GSM8K_FINAL.search(worked)
        if not match:
            raise ProblemFileError(path, line, "answer", "GSM8K answer has no final '#### N' line")
        answer = match["answer"].replace(",", "").strip()
        source_id = _source_id(obj, line)
        metadata = {"solution": worked, "format": "gsm8k"}
    elif "problem" in obj:  # plain or MATH-500
        statement = _require_text(obj, "problem", path, line)
        answer = _require_text(obj, "answer", path, line)
        source_id = _source_id(obj, line)
        fmt = "math500" if "unique_id" in obj else "plain"
        metadata = {k: v for k, v in obj.items() if k not in {"id", "problem", "answer"}}
        metadata["format"] = fmt
    else:
        raise ProblemFileError(
            path, line, "problem",
            "missing: expected {id, problem, answer}, MATH-500 {problem, answer, ...} "
            "or GSM8K {question, answer}",
        )
    content = {"kind": "answer", "statement": statement, "answer": answer}
    return Problem(
        id=problem_id(content), source=str(path), source_id=source_id, statement=statement,
        reference_answer=answer, split=obj.get("split"), metadata=metadata,
    )


_CHAT_ROLES = ("system", "user", "assistant")


def _chat_problem(obj: dict[str, Any], path: Path, line: int) -> Problem:
    messages = obj["input"]
    if not isinstance(messages, list) or not messages:
        raise ProblemFileError(path, line, "input", "expected a non-empty list of chat messages")
    for i, message in enumerate(messages):
        where = f"input[{i}]"
        if not isinstance(message, dict):
            raise ProblemFileError(path, line, where, f"expected a message object, got {type(message).__name__}")
        if message.get("role") not in _CHAT_ROLES:
            raise ProblemFileError(path, line, f"{where}.role", f"expected one of {', '.join(_CHAT_ROLES)}, "
                                   f"got {message.get('role')!r}")
        if not isinstance(message.get("content"), str) or not message["content"].strip():
            raise ProblemFileError(path, line, f"{where}.content", "expected a non-empty string")
    if messages[-1]["role"] != "user":
        raise ProblemFileError(path, line, "input", "the last message must be the user's question")
    ideal = obj.get("ideal")
    if isinstance(ideal, list):
        ideal = ideal[0] if ideal else None
    answer = _require_text({"ideal": ideal}, "ideal", path, line)
    chat = [{"role": m["role"], "content": m["content"]} for m in messages]
    statement = chat[-1]["content"]
    metadata = {k: v for k, v in obj.items() if k not in {"id", "input", "ideal"}}
    metadata.update(format="chat", messages=chat)
    content = {"kind": "answer", "statement": statement, "answer": answer, "messages": chat}
    return Problem(
        id=problem_id(content), source=str(path), source_id=_source_id(obj, line), statement=statement,
        reference_answer=answer, split=obj.get("split"), metadata=metadata,
    )


def load_problems(path: str | Path, limit: int | None = None, *, dedupe: bool = False,
                  max_line_bytes: int = DEFAULT_MAX_LINE_BYTES) -> list[Problem]:
    """Load and validate a whole file; raises ProblemFileError on the first bad line.
    A repeated id or problem (the same statement and answer) is an error naming both
    lines, unless `dedupe` keeps the first (jsonl.Duplicates)."""
    path = Path(path)
    problems: list[Problem] = []
    duplicates = Duplicates(path, dedupe)
    for number, obj in read_jsonl(path, max_line_bytes):
        problem = parse_problem(obj, path, number)
        keys = [(f"problem\0{problem.id}", "problem (the same statement and answer)")]
        if not problem.source_id.startswith("line "):
            keys.insert(0, (f"id\0{problem.source_id}", f"id {problem.source_id!r}"))
        if duplicates.admit(number, keys):
            problems.append(problem)
    duplicates.report()
    if not problems:
        raise ProblemFileError(path, None, None, "no problems in file")
    return problems[:limit] if limit else problems
