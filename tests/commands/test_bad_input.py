"""Bad input to `proofflow solve` / `prove` as a user gives it (issue 20.6-13): each is one
line naming the file, line, field, key or path; a non-zero exit; and nothing written —
no database, no -logs folder, no .work folder (locks, journals), no model call (the
STAND-IN instant server counts what it receives).

The commands run in this process (typer's CliRunner, reporting to the session's Prefect
server) where they stop before any run starts; the full-disk case runs real `proofflow`
subprocesses on a small tmpfs (it needs root to mount one)."""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import string
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest
from click.testing import Result
from typer.testing import CliRunner

from proofflow.testing.instant_server import InstantServer

pytestmark = pytest.mark.prefect


@pytest.fixture(scope="module")
def server() -> Iterator[InstantServer]:
    with InstantServer() as srv:
        yield srv


def _problems(path: Path, n: int = 2, *, extra: list[dict[str, str]] | None = None) -> Path:
    rows = [{"id": f"q{i}", "problem": f"What is {i} + {i}?", "answer": str(2 * i)} for i in range(n)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows + (extra or [])))
    return path


def _solve(prefect_api: str, server: InstantServer, *args: str, env: dict[str, str] | None = None) -> Result:
    from proofflow import cli

    return CliRunner().invoke(cli.app, ["solve", *args, "--model", "instant", "--base-url", server.base_url,
                                        "-n", "1", "-r", "0"],
                              env={"COLUMNS": "300", "PREFECT_API_URL": prefect_api, **(env or {})})


def _one_error_line(result: Result) -> str:
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.output
    assert "Traceback" not in result.output, result.output
    return errors[0]


def _nothing_written(folder: Path, server: InstantServer, received: int) -> None:
    made = sorted(p.name for p in folder.rglob("*") if p.name.endswith((".duckdb", "-logs", ".work", ".wal")))
    assert made == [], made
    assert server.behaviour.received == received  # no model call


@pytest.fixture()
def here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)  # the default database, ./proofflow.duckdb, would land here
    return tmp_path


def test_a_fifo_or_a_device_as_the_problem_file(prefect_api: str, server: InstantServer, here: Path) -> None:
    """20.6. The FIFO case runs in a child process with a deadline: it used to block forever."""
    fifo = here / "problems.jsonl"
    os.mkfifo(fifo)
    before = server.behaviour.received
    out = subprocess.run([sys.executable, "-m", "proofflow.cli", "solve", str(fifo), "--model", "instant",
                          "--base-url", server.base_url], cwd=here, capture_output=True, text=True, timeout=240,
                         env={**os.environ, "PREFECT_API_URL": prefect_api, "COLUMNS": "300"})
    assert out.returncode == 1, out.stdout + out.stderr
    assert f"error: {fifo}: is a FIFO (named pipe), not a regular file" in out.stdout
    assert "Traceback" not in out.stdout + out.stderr
    result = _solve(prefect_api, server, "/dev/null")
    assert result.exit_code == 1
    assert _one_error_line(result) == ("error: /dev/null: is a character device, not a regular file; a run reads its "
                                       "problem file more than once, so write the problems to a file and give that")
    _nothing_written(here, server, before)


def test_a_line_over_the_limit(prefect_api: str, server: InstantServer, here: Path) -> None:
    """20.7: refused with the line's number and size, before anything is sent."""
    f = _problems(here / "big.jsonl", extra=[{"id": "big", "problem": "x" * (3 << 20), "answer": "1"}])
    size = len(f.read_text().splitlines()[2])
    before = server.behaviour.received
    result = _solve(prefect_api, server, str(f))
    assert result.exit_code == 1
    assert _one_error_line(result) == (f"error: {f}, line 3: line is {size:,} bytes, over the limit of 1,048,576 "
                                       "bytes (problems.max_line_bytes in the config file)")
    _nothing_written(here, server, before)
    # The limit is configurable (a config file here).
    cfg = here / "big.toml"
    cfg.write_text(f"[problems]\nmax_line_bytes = {size}\n")
    result = _solve(prefect_api, server, str(f), "--config", str(cfg), "--db", str(here / "big.duckdb"))
    assert result.exit_code == 0, result.output
    assert "3/3" in result.output


def test_a_typo_in_a_config_key_or_variable(prefect_api: str, server: InstantServer, here: Path) -> None:
    """20.8: `[solve] sampels = 4` was silently ignored."""
    f = _problems(here / "p.jsonl")
    cfg = here / "config.toml"
    cfg.write_text("[solve]\nsampels = 4\n")
    before = server.behaviour.received
    result = _solve(prefect_api, server, str(f), "--config", str(cfg))
    assert result.exit_code == 2
    assert _one_error_line(result) == f'error: {cfg}: [solve] sampels: unknown key (did you mean "samples"?)'
    result = _solve(prefect_api, server, str(f), env={"PROOFFLOW_SAMPLING__MAX_TOKNS": "9"})
    assert result.exit_code == 2
    assert _one_error_line(result) == ("error: environment variable PROOFFLOW_SAMPLING__MAX_TOKNS: [sampling] "
                                       'max_tokns: unknown key (did you mean "max_tokens"?)')
    _nothing_written(here, server, before)


def test_a_read_only_database_folder(prefect_api: str, server: InstantServer, here: Path) -> None:
    """20.10: a raw `OSError: [Errno 30] Read-only file system: 'ro/x-logs'` before."""
    f = _problems(here / "p.jsonl")
    ro = here / "ro"
    ro.mkdir()
    mounted = os.geteuid() == 0 and subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(ro)],
                                                   capture_output=True).returncode == 0
    if not mounted:
        ro.chmod(0o555)  # not root: the permission bits hold
    try:
        before = server.behaviour.received
        result = _solve(prefect_api, server, str(f), "--db", "ro/x.duckdb")
        assert result.exit_code == 1
        line = _one_error_line(result)
        assert line.startswith("error: database folder ro is ") and "--db" in line, line
        assert ("read-only file system" if mounted else "not writable") in line
        assert "resume" not in result.output
        assert list(ro.iterdir()) == []
        _nothing_written(here, server, before)
    finally:
        if mounted:
            subprocess.run(["umount", str(ro)], check=True)
        ro.chmod(0o755)


def test_a_truncated_database_is_not_modified(prefect_api: str, server: InstantServer, here: Path) -> None:
    """20.11: the file was modified by opening it, then reported corrupt with a resume line."""
    from proofflow.storage.db import Store

    db = here / "cut.duckdb"
    Store(db).init()
    with duckdb.connect(str(db)) as con:  # some data, so that the file has blocks to lose
        con.execute("CREATE TABLE ballast AS SELECT range AS i, md5(range::VARCHAR) AS s FROM range(100000)")
    with db.open("r+b") as fh:
        fh.truncate(db.stat().st_size // 2)
    digest, stat = hashlib.sha256(db.read_bytes()).hexdigest(), db.stat()
    before = server.behaviour.received
    result = _solve(prefect_api, server, str(_problems(here / "p.jsonl")), "--db", str(db))
    assert result.exit_code == 1
    line = _one_error_line(result)
    assert line.startswith(f"error: database {db} is corrupt (") and "cut short" in line, line
    assert "Restore it from a backup, or start a new database" in line
    assert "resume" not in result.output.replace("resuming on this file is not possible", "")
    assert hashlib.sha256(db.read_bytes()).hexdigest() == digest
    assert (db.stat().st_mtime_ns, db.stat().st_size) == (stat.st_mtime_ns, stat.st_size)
    assert sorted(p.name for p in here.iterdir()) == ["cut.duckdb", "p.jsonl"]  # no -logs, .work or .wal
    assert server.behaviour.received == before


def test_a_bad_url_and_a_directory_as_the_database(prefect_api: str, server: InstantServer, here: Path) -> None:
    """20.12: `--base-url not-a-url` was tried 5 times over 10 s and left a database and
    logs; PROOFFLOW_DB_PATH naming a directory offered to resume and made a -logs folder."""
    from proofflow import cli

    f = _problems(here / "p.jsonl")
    result = CliRunner().invoke(cli.app, ["solve", str(f), "--model", "instant", "--base-url", "not-a-url"],
                                env={"COLUMNS": "300", "PREFECT_API_URL": prefect_api})
    assert result.exit_code == 2
    assert _one_error_line(result) == ("error: command line: [endpoint] base_urls: 'not-a-url' is not an http(s) URL "
                                       "with a host, e.g. http://127.0.0.1:8000/v1")
    (here / "dbdir").mkdir()
    before = server.behaviour.received
    result = _solve(prefect_api, server, str(f), env={"PROOFFLOW_DB_PATH": "dbdir"})
    assert result.exit_code == 1
    assert _one_error_line(result) == ("error: database path dbdir is a directory; point --db (or "
                                       "PROOFFLOW_DB_PATH) at a file in a writable folder")
    assert "resume" not in result.output
    assert list((here / "dbdir").iterdir()) == []
    _nothing_written(here, server, before)


def test_repeated_ids_and_dedupe(prefect_api: str, server: InstantServer, here: Path) -> None:
    """20.13: three lines with one id ran as three problems; two identical lines became one."""
    f = _problems(here / "dups.jsonl", extra=[{"id": "q0", "problem": "What is 7 + 7?", "answer": "14"}])
    before = server.behaviour.received
    result = _solve(prefect_api, server, str(f))
    assert result.exit_code == 1
    assert _one_error_line(result) == (f"error: {f}, line 3: duplicate id 'q0': {f}:1 and {f}:3; remove one, "
                                       "or pass --dedupe to keep the first")
    _nothing_written(here, server, before)
    same = _problems(here / "same.jsonl", extra=[{"id": "q1", "problem": "What is 1 + 1?", "answer": "2"}])
    result = _solve(prefect_api, server, str(same), "--dedupe", "--db", str(here / "d.duckdb"))
    assert result.exit_code == 0, result.output
    assert f"note: {same}: --dedupe dropped 1 duplicate line(s) (line 3), kept the first of each" in result.output
    assert "2/2" in result.output
    assert server.behaviour.received == before + 2  # one request per kept problem


# --- 20.9: a full disk -----------------------------------------------------------------


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """As a user runs it: no Prefect API configured, so each command starts its own
    temporary Prefect server (its files stay off the small disk)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_API")}
    return subprocess.run([sys.executable, "-m", "proofflow.cli", *args], cwd=cwd, env={**env, "COLUMNS": "300"},
                          capture_output=True, text=True, timeout=480)  # a loaded 2-core machine: ~1 min each


@pytest.fixture()
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 32 MB tmpfs: a disk that fills without filling the real one (needs root)."""
    disk = tmp_path / "disk"
    disk.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mount = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=32m", "tmpfs", str(disk)], capture_output=True,
                           text=True)
    if mount.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mount.stderr.strip()}")
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=True)


def _samples(db: Path) -> dict[str, str]:
    with duckdb.connect(str(db), read_only=True) as con:
        return dict(con.execute("SELECT sample_id, completion FROM samples").fetchall())


def test_a_full_disk_is_named_once_and_the_resume_completes(small_disk: Path, tmp_path: Path) -> None:
    """Before: 17,199 lines of `--- Logging error ---`, then a RecursionError, ENOSPC never
    named. Now one line names the folder and what is free, what was stored is kept, and
    once space is freed the same command resumes and completes."""
    rng = random.Random(7)
    problems = tmp_path / "p.jsonl"  # incompressible statements, so the rows take real space
    problems.write_text("".join(
        json.dumps({"id": f"q{i}", "problem": "".join(rng.choices(string.ascii_letters, k=3000)) + f" {i} + {i}?",
                    "answer": str(2 * i)}) + "\n" for i in range(40)))
    db = small_disk / "x.duckdb"
    with InstantServer() as srv:
        args = ("solve", str(problems), "--model", "instant", "--base-url", srv.base_url, "-n", "2", "-r", "0",
                "--run", "full", "--db", str(db))
        first = _cli(*args, "--limit", "5", cwd=tmp_path)
        assert first.returncode == 0, first.stdout + first.stderr
        kept = _samples(db)
        assert len(kept) == 10
        ballast = small_disk / "ballast"
        free = shutil.disk_usage(small_disk).free
        with ballast.open("wb") as fh:  # leave 16 KiB: less than the next flush needs
            fh.write(b"\0" * max(free - (16 << 10), 0))
        full = _cli(*args, cwd=tmp_path)
        out = full.stdout + full.stderr
        assert full.returncode == 1, out
        named = [line for line in out.splitlines() if "no space left" in line]
        assert named == [line for line in out.splitlines() if line.startswith("error:")], out
        assert len(named) == 1 and f"no space left on the device holding {small_disk}" in named[0], out
        assert "bytes free" in named[0]
        for flood in ("Logging error", "RecursionError", "Traceback"):
            assert flood not in out, out
        ballast.unlink()  # space freed: the same command resumes
        resumed = _cli(*args, cwd=tmp_path)
        assert resumed.returncode == 0, resumed.stdout + resumed.stderr
        assert "40/40" in resumed.stdout
    after = _samples(db)
    assert len(after) == 80
    assert {k: after[k] for k in kept} == kept  # what was stored before the disk filled is intact
