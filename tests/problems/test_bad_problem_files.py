"""Hostile problem files (issue 20.6, 20.7, 20.13): what is not a regular file is refused
before it is opened, a line over the limit is refused without being read whole, and a
repeated id or problem is an error naming both lines unless --dedupe keeps the first."""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import tracemalloc
from pathlib import Path

import pytest

from proofflow.problems import ProblemFileError, load_formal_problems, load_problems
from proofflow.problems.file_identity import file_lines


def _line(i: int, **extra: object) -> str:
    return json.dumps({"id": f"q{i}", "problem": f"What is {i} + {i}?", "answer": str(2 * i), **extra}) + "\n"


def test_a_fifo_is_refused_without_opening_it(tmp_path: Path) -> None:
    """In a child process with a deadline: before, opening the FIFO blocked forever."""
    fifo = tmp_path / "problems.jsonl"
    os.mkfifo(fifo)
    code = ("import sys\nfrom proofflow.problems import ProblemFileError, load_problems\n"
            "try:\n    load_problems(sys.argv[1])\nexcept ProblemFileError as e:\n    print(e)\n")
    out = subprocess.run([sys.executable, "-c", code, str(fifo)], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == (f"{fifo}: is a FIFO (named pipe), not a regular file; a run reads its problem "
                                  "file more than once, so write the problems to a file and give that")


def test_devices_sockets_and_directories_are_named(tmp_path: Path) -> None:
    with pytest.raises(ProblemFileError, match="is a character device, not a regular file"):
        load_problems("/dev/null")
    with pytest.raises(ProblemFileError, match="is a directory"):
        load_formal_problems(tmp_path)
    path = tmp_path / "s.sock"
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(path))
        with pytest.raises(ProblemFileError, match="is a socket"):
            file_lines(path)


def test_a_long_line_is_refused_with_its_number_and_size_in_bounded_memory(tmp_path: Path) -> None:
    f = tmp_path / "big.jsonl"
    big = 64 << 20  # 64 MiB of problem text on line 2
    with f.open("w") as out:
        out.write(_line(1))
        out.write('{"id": "q2", "answer": "1", "problem": "' + "x" * big + '"}\n')
        out.write(_line(3))
    size = f.stat().st_size - len(_line(1)) - len(_line(3)) - 1
    tracemalloc.start()
    try:
        with pytest.raises(ProblemFileError) as err:
            load_problems(f)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert str(err.value) == (f"{f}, line 2: line is {size:,} bytes, over the limit of 1,048,576 bytes "
                              "(problems.max_line_bytes in the config file)")
    assert peak < 8 << 20, f"peak {peak:,} bytes: the line was read whole"  # before: the whole file, 64+ MiB
    # The limit is a setting: a generous one accepts the same line.
    assert len(load_problems(f, max_line_bytes=size)) == 3
    with pytest.raises(ProblemFileError, match=r"line 2: line is"):
        file_lines(f, max_line_bytes=size - 1)


def test_the_limit_counts_the_line_not_its_line_ending(tmp_path: Path) -> None:
    f = tmp_path / "crlf.jsonl"
    one, two = _line(1).rstrip("\n"), _line(2).rstrip("\n")
    assert len(one) == len(two)
    f.write_bytes(one.encode() + b"\r\n" + two.encode() + b"\r\n")
    assert [p.source_id for p in load_problems(f, max_line_bytes=len(one))] == ["q1", "q2"]
    with pytest.raises(ProblemFileError, match=rf"line 1: line is {len(one)} bytes, over the limit of {len(one) - 1}"):
        load_problems(f, max_line_bytes=len(one) - 1)


def test_a_repeated_id_names_both_lines(tmp_path: Path) -> None:
    f = tmp_path / "ids.jsonl"
    f.write_text(_line(1) + _line(2) + _line(3).replace('"q3"', '"q1"'))
    with pytest.raises(ProblemFileError) as err:
        load_problems(f)
    assert str(err.value) == (f"{f}, line 3: duplicate id 'q1': {f}:1 and {f}:3; "
                              "remove one, or pass --dedupe to keep the first")


def test_identical_lines_are_an_error_not_one_problem(tmp_path: Path) -> None:
    f = tmp_path / "same.jsonl"
    f.write_text(_line(1) + _line(2) + _line(1))
    with pytest.raises(ProblemFileError, match=rf"duplicate id 'q1': {f}:1 and {f}:3"):
        load_problems(f)
    g = tmp_path / "noid.jsonl"  # no ids: the same statement and answer twice
    g.write_text('{"problem": "1+1?", "answer": "2"}\n{"problem": "2+2?", "answer": "4"}\n'
                 '{"problem": "1+1?", "answer": "2"}\n')
    with pytest.raises(ProblemFileError,
                       match=rf"duplicate problem \(the same statement and answer\): {g}:1 and {g}:3"):
        load_problems(g)


def test_dedupe_keeps_the_first_and_says_how_many_it_dropped(tmp_path: Path,
                                                             caplog: pytest.LogCaptureFixture) -> None:
    f = tmp_path / "dups.jsonl"
    f.write_text(_line(1) + _line(2) + _line(1) + _line(3).replace('"q3"', '"q2"'))
    with caplog.at_level(logging.WARNING, logger="proofflow.problems"):
        problems = load_problems(f, dedupe=True)
    assert [p.source_id for p in problems] == ["q1", "q2"]
    assert [p.reference_answer for p in problems] == ["2", "4"]  # the first of each kept
    assert [r.getMessage() for r in caplog.records] == [
        f"{f}: --dedupe dropped 2 duplicate line(s) (line 3, 4), kept the first of each"]


def test_formal_sets_refuse_repeated_ids_and_names(tmp_path: Path) -> None:
    f = tmp_path / "formal.jsonl"
    a = {"id": "a", "header": "", "statement": "Theorem a : True.", "backend": "coq"}
    b = {"id": "a", "header": "", "statement": "Theorem b : True.", "backend": "coq"}
    f.write_text(json.dumps(a) + "\n" + json.dumps(b) + "\n")
    with pytest.raises(ProblemFileError, match=rf"duplicate id 'a': {f}:1 and {f}:2"):
        load_formal_problems(f)
    assert [p.name for p in load_formal_problems(f, dedupe=True)] == ["a"]
