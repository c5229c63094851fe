"""Loading answer problem sets: the real benchmark formats, the bundled examples, and
malformed files that must fail with the file, line and field named."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from proofflow.problems import ProblemFileError, example_path, load_problems


def test_bundled_examples_load() -> None:
    problems = load_problems(example_path())
    assert 15 <= len(problems) <= 30
    assert all(p.reference_answer and p.statement for p in problems)
    assert len({p.id for p in problems}) == len(problems)


def test_gsm8k_file_as_it_is(shared_data: Path) -> None:
    problems = load_problems(shared_data / "gsm8k" / "test.jsonl")
    assert len(problems) == 1319
    first = problems[0]
    assert first.reference_answer == "18"
    assert first.statement.startswith("Janet")
    assert all("," not in p.reference_answer for p in problems)  # 1,000 -> 1000


def test_math500_file_as_it_is(shared_data: Path) -> None:
    problems = load_problems(shared_data / "math500" / "test.jsonl")
    assert len(problems) == 500
    assert problems[0].reference_answer == "\\left( 3, \\frac{\\pi}{2} \\right)"
    assert problems[0].source_id == "test/precalculus/807.json"
    assert problems[0].metadata["subject"] == "Precalculus"


def test_ids_are_stable_across_loads(tmp_path: Path) -> None:
    f = tmp_path / "a.jsonl"
    f.write_text(json.dumps({"id": "x", "problem": "1+1?", "answer": "2"}) + "\n")
    g = tmp_path / "b.jsonl"
    g.write_text("\n" + json.dumps({"id": "other-name", "problem": "1+1?", "answer": "2"}) + "\n")
    assert load_problems(f)[0].id == load_problems(g)[0].id


@pytest.mark.parametrize(
    ("content", "line", "field", "fragment"),
    [
        ('{"id": "a", "problem": "p", "answer": "1"}\n{"id": "b", "problem": "q"\n', 2, None, "invalid JSON"),
        ('{"id": "a", "problem": "p"}\n', 1, "answer", "missing"),
        ('{"id": "a", "problem": "", "answer": "1"}\n', 1, "problem", "empty"),
        ('{"id": "a", "problem": ["p"], "answer": "1"}\n', 1, "problem", "expected a string"),
        ('{"question": "q", "answer": "no final line"}\n', 1, "answer", "####"),
        ('{"text": "q"}\n', 1, "problem", "missing"),
        ('[1, 2]\n', 1, None, "JSON object"),
    ],
)
def test_malformed_lines_name_file_line_and_field(
    tmp_path: Path, content: str, line: int, field: str | None, fragment: str
) -> None:
    f = tmp_path / "bad.jsonl"
    f.write_text(content)
    with pytest.raises(ProblemFileError) as err:
        load_problems(f)
    assert err.value.line == line and err.value.field == field
    assert fragment in str(err.value) and "bad.jsonl" in str(err.value)
    assert f"line {line}" in str(err.value)


def test_missing_and_empty_files(tmp_path: Path) -> None:
    with pytest.raises(ProblemFileError, match="does not exist"):
        load_problems(tmp_path / "nope.jsonl")
    (tmp_path / "empty.jsonl").write_text("\n\n")
    with pytest.raises(ProblemFileError, match="no problems"):
        load_problems(tmp_path / "empty.jsonl")


# --- hostile input (issue 12.8): clear errors naming the file, no tracebacks -------------


def test_a_utf8_bom_is_accepted(tmp_path: Path) -> None:
    f = tmp_path / "bom.jsonl"
    f.write_bytes(b"\xef\xbb\xbf" + json.dumps({"id": "a", "problem": "1+1?", "answer": "2"}).encode() + b"\n")
    [p] = load_problems(f)
    assert p.source_id == "a" and p.reference_answer == "2"


def test_a_lone_surrogate_names_line_and_field(tmp_path: Path) -> None:
    f = tmp_path / "sur.jsonl"
    f.write_text('{"id": "a", "problem": "p", "answer": "1"}\n'
                 '{"id": "b", "problem": "x \\ud800 y", "answer": "2"}\n')
    with pytest.raises(ProblemFileError) as err:
        load_problems(f)
    assert (err.value.line, err.value.field) == (2, "problem")
    assert "surrogate" in str(err.value) and "sur.jsonl" in str(err.value)


def test_bytes_that_are_not_utf8_name_their_line(tmp_path: Path) -> None:
    f = tmp_path / "latin1.jsonl"
    f.write_bytes(b'{"id": "a", "problem": "p", "answer": "1"}\n{"id": "b", "problem": "caf\xe9", "answer": "2"}\n')
    with pytest.raises(ProblemFileError) as err:
        load_problems(f)
    assert err.value.line == 2 and "not UTF-8" in str(err.value)


def test_a_directory_is_not_a_problem_file(tmp_path: Path) -> None:
    with pytest.raises(ProblemFileError) as err:
        load_problems(tmp_path)
    assert str(tmp_path) in str(err.value) and "directory" in str(err.value)


def test_id_zero_is_an_id(tmp_path: Path) -> None:
    # `"id": 0` was labelled "line 1" (falsy zero).
    f = tmp_path / "zero.jsonl"
    f.write_text(json.dumps({"id": 0, "problem": "1+1?", "answer": "2"}) + "\n"
                 + json.dumps({"question": "q?", "answer": "so\n#### 3", "id": 0.0}) + "\n"
                 + json.dumps({"id": None, "problem": "2+2?", "answer": "4"}) + "\n")
    assert [p.source_id for p in load_problems(f)] == ["0", "0.0", "line 3"]
