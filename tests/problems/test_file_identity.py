"""A run's problem file is part of its identity (issue 12.5): an edited file is refused
naming the lines that changed; --extend adds new lines' problems; nothing else merges."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from proofflow.problems import load_problems
from proofflow.problems.file_identity import ProblemFileChanged, check_problem_file, compare, file_lines
from proofflow.storage.db import Store


def _write(path: Path, answers: list[str], extra: list[dict] | None = None) -> Path:
    rows = [{"id": f"q{i}", "problem": f"What is {i} + {i}?", "answer": a} for i, a in enumerate(answers)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows + (extra or [])))
    return path


ANSWERS = [str(2 * i) for i in range(10)]


def test_same_file_resumes_and_key_order_does_not_matter(tmp_path: Path) -> None:
    store = Store(tmp_path / "db.duckdb")
    f = _write(tmp_path / "p.jsonl", ANSWERS)
    assert not check_problem_file(store, "r1", "run", f)  # new run: recorded
    assert [x.line for x in store.problem_file("r1")] == list(range(1, 11))
    # Reformatted (other key order, spacing): the same content.
    rows = [json.loads(x) for x in f.read_text().splitlines()]
    f.write_text("".join(json.dumps(dict(reversed(list(r.items()))), indent=None) + "\n" for r in rows))
    assert not check_problem_file(store, "r1", "run", f)


def test_one_changed_answer_is_refused_naming_the_line(tmp_path: Path) -> None:
    store = Store(tmp_path / "db.duckdb")
    f = _write(tmp_path / "p.jsonl", ANSWERS)
    check_problem_file(store, "r1", "run", f)
    edited = list(ANSWERS)
    edited[3] = "7"
    _write(f, edited)
    with pytest.raises(ProblemFileChanged) as err:
        check_problem_file(store, "r1", "run", f)
    message = str(err.value)
    assert "line 4 (id q3): answer was \"6\", now \"7\"" in message
    assert "p.jsonl" in message and "'run'" in message
    with pytest.raises(ProblemFileChanged, match="only adds new problems"):
        check_problem_file(store, "r1", "run", f, extend=True)  # a change is not an extension
    # Nothing was recorded by the refused attempts: the original file still resumes.
    _write(f, ANSWERS)
    assert not check_problem_file(store, "r1", "run", f)


def test_added_lines_need_extend(tmp_path: Path) -> None:
    store = Store(tmp_path / "db.duckdb")
    f = _write(tmp_path / "p.jsonl", ANSWERS)
    check_problem_file(store, "r1", "run", f)
    _write(f, ANSWERS, extra=[{"id": "new", "problem": "2+3?", "answer": "5"}])
    with pytest.raises(ProblemFileChanged) as err:
        check_problem_file(store, "r1", "run", f)
    assert "line 11 (id new): added" in str(err.value) and "--extend" in str(err.value)
    changes = check_problem_file(store, "r1", "run", f, extend=True)
    assert [x.line for x in changes.added] == [11]
    assert len(store.problem_file("r1")) == 11  # the extended file is the run's file now
    assert not check_problem_file(store, "r1", "run", f)


def test_removed_lines_and_other_runs(tmp_path: Path) -> None:
    store = Store(tmp_path / "db.duckdb")
    f = _write(tmp_path / "p.jsonl", ANSWERS)
    check_problem_file(store, "r1", "run", f)
    g = _write(tmp_path / "short.jsonl", ANSWERS[:8])
    with pytest.raises(ProblemFileChanged) as err:
        check_problem_file(store, "r1", "run", g, extend=True)
    assert "line 9 (id q8): removed" in str(err.value) and "line 10 (id q9): removed" in str(err.value)
    assert not check_problem_file(store, "r2", "other", g)  # another run has its own file


def test_compare_pairs_changed_lines_and_reports_inserts() -> None:
    def lines(*digests: str) -> list:
        return [type("L", (), {"digest": d, "line": i + 1})() for i, d in enumerate(digests)]

    c = compare(lines("a", "b", "c"), lines("a", "x", "c", "d"))  # type: ignore[arg-type]
    assert [(o.line, n.line) for o, n in c.changed] == [(2, 2)]
    assert [n.line for n in c.added] == [4] and not c.removed


def test_file_lines_reads_what_the_loader_reads(tmp_path: Path) -> None:
    f = _write(tmp_path / "p.jsonl", ANSWERS)
    f.write_text("\n" + f.read_text() + "\n\n")
    assert len(file_lines(f)) == len(load_problems(f)) == 10
    assert file_lines(f)[0].line == 2  # real line numbers, blank lines skipped
