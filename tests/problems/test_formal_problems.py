"""Formal problem loaders: both miniF2F layouts from ../shared/data, plain JSONL, the
bundled Coq set, and clear errors for malformed files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from proofflow.problems import ProblemFileError, coq_examples, load_formal_problems, strip_lean_proof

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
DEEPSEEK = DATA / "minif2f-deepseek" / "minif2f.jsonl"
YANGKY = DATA / "minif2f-yangky11" / "minif2f_yangky11.jsonl"


@pytest.mark.skipif(not DEEPSEEK.exists(), reason=f"{DEEPSEEK} not present")
def test_minif2f_deepseek():
    problems = load_formal_problems(DEEPSEEK)
    assert len(problems) == 488
    assert {p.split for p in problems} == {"valid", "test"}
    p = next(p for p in problems if p.name == "amc12a_2015_p10")
    assert p.statement.startswith("theorem amc12a_2015_p10 ") and p.statement.endswith(":= by")
    assert p.header.startswith("import Mathlib") and p.informal.startswith("Integers $x$")
    assert p.backend == "lean" and p.metadata["format"] == "minif2f-deepseek" and "goal" in p.metadata
    assert len(load_formal_problems(DEEPSEEK, split="test")) == 244


@pytest.mark.skipif(not YANGKY.exists(), reason=f"{YANGKY} not present")
def test_minif2f_yangky11():
    problems = load_formal_problems(YANGKY)
    assert len(problems) >= 244
    p = next(p for p in problems if p.name == "aime_1983_p1")
    assert p.statement.endswith(":= by") and "sorry" not in p.statement
    assert p.metadata["format"] == "minif2f-yangky11"


def test_strip_lean_proof():
    assert strip_lean_proof("theorem t : 1 = 1 := by sorry") == "theorem t : 1 = 1 := by"
    assert strip_lean_proof("theorem t : 1 = 1 := by\n  sorry\n") == "theorem t : 1 = 1 := by"


def test_plain_and_coq_examples(tmp_path):
    f = tmp_path / "p.jsonl"
    f.write_text(json.dumps({"id": "a", "header": "import Mathlib", "statement": "theorem a : 1 + 1 = 2 := by",
                             "informal": "one plus one"}) + "\n\n")
    (p,) = load_formal_problems(f)
    assert (p.name, p.backend, p.informal) == ("a", "lean", "one plus one")
    coq = coq_examples()
    assert len(coq) >= 20 and all(p.backend == "coq" and p.informal for p in coq)
    assert {p.metadata["automation"] for p in coq} >= {"lia", "nia", "ring", "sketch", "hard"}


@pytest.mark.parametrize("line,field", [
    ('{"id": "a", "header": "", "statement": 3}', "statement"),
    ('{"id": "a", "header": ""}', "statement"),
    ('{"id": "a", "header": "", "statement": "lemma_without_keyword : True := by"}', "statement"),
    ('{"id": "a", "header": "", "statement": "Theorem a : True", "backend": "coq"}', "statement"),
    ('{"id": "a", "header": "", "statement": "Theorem a : True.", "backend": "isabelle"}', "backend"),
    ('{"name": "x", "header": "import Mathlib", "formal_statement": "theorem y : True := by sorry"}', "name"),
    ('{"name": "x", "formal_statement": "theorem x : True := by sorry"}', "header"),
    ('{"name": "x", "header": "h", "formal_statement": "theorem x : True := trivial"}', "formal_statement"),
])
def test_malformed_names_file_line_field(tmp_path, line, field):
    f = tmp_path / "bad.jsonl"
    good = json.dumps({"id": "g", "header": "", "statement": "theorem g : True := by"})
    f.write_text(good + "\n" + line + "\n")
    with pytest.raises(ProblemFileError) as exc:
        load_formal_problems(f)
    assert exc.value.line == 2 and exc.value.field == field and str(f) in str(exc.value)


def test_bad_json_and_missing_file(tmp_path):
    f = tmp_path / "bad.jsonl"
    f.write_text("{not json\n")
    with pytest.raises(ProblemFileError, match="line 1"):
        load_formal_problems(f)
    with pytest.raises(ProblemFileError, match="does not exist"):
        load_formal_problems(tmp_path / "nope.jsonl")
    dup = tmp_path / "dup.jsonl"
    row = json.dumps({"id": "g", "header": "", "statement": "theorem g : True := by"})
    dup.write_text(row + "\n" + row + "\n")
    with pytest.raises(ProblemFileError, match="duplicate"):
        load_formal_problems(dup)


def test_formal_hostile_input(tmp_path):
    # Issue 12.8 / 12.5: BOM accepted, surrogate and directory named, id 0 kept.
    line = {"id": 0, "header": "", "statement": "Theorem t : 1 = 1.", "backend": "coq"}
    f = tmp_path / "bom.jsonl"
    f.write_bytes(b"\xef\xbb\xbf" + json.dumps(line).encode() + b"\n")
    [p] = load_formal_problems(f)
    assert p.metadata["id"] == "0"
    g = tmp_path / "sur.jsonl"
    g.write_text(json.dumps(line) .replace("Theorem t", "Theorem t \\ud800") + "\n")
    with pytest.raises(ProblemFileError, match="surrogate") as err:
        load_formal_problems(g)
    assert err.value.line == 1 and err.value.field == "statement"
    with pytest.raises(ProblemFileError, match="directory"):
        load_formal_problems(tmp_path)
