"""The Python sandbox against hostile programs: each case checks containment, the verdict,
and that the pool still works afterwards."""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from proofflow.verifiers import Outcome
from proofflow.verifiers.sandbox import (
    Limits,
    Sandbox,
    exec_verdict,
    self_verify,
    self_verify_verdict,
)

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the sandbox needs root")

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def sb() -> Iterator[Sandbox]:
    with Sandbox(size=2, limits=Limits(timeout_s=5.0, max_output=256 * 1024)) as s:
        yield s


def _uid_procs(uids: set[int]) -> list[int]:
    """Host pids of live processes whose real uid is one of ``uids``."""
    found = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            status = (d / "status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("Uid:") and int(line.split()[1]) in uids and "State:\tZ" not in status:
                found.append(int(d.name))
    return found


def _sandbox_uids(sb: Sandbox) -> set[int]:
    return sb.zygote_uids()


def _assert_healthy(sb: Sandbox, zygotes_before: list[int] | None = None) -> None:
    # Every process a program started is gone once its run returned.
    deadline = time.monotonic() + 2.0
    while _uid_procs(_sandbox_uids(sb)) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert _uid_procs(_sandbox_uids(sb)) == []
    if zygotes_before is not None:
        assert sorted(sb.zygote_pids()) == sorted(zygotes_before), "a zygote died"
    for _ in range(sb.size * 2):  # touch every zygote
        r = sb.run("print(6 * 7)")
        assert r.outcome is Outcome.PASS and r.stdout == "42\n"


def test_basic_pass_fail(sb: Sandbox) -> None:
    r = sb.run("import math\nprint(math.factorial(5))")
    assert (r.outcome, r.stdout, r.exit_code) == (Outcome.PASS, "120\n", 0)
    r = sb.run("x = 1\nraise ValueError('boom')")
    assert r.outcome is Outcome.FAIL and r.exit_code == 1
    assert "ValueError: boom" in r.stderr and 'File "main.py", line 2' in r.stderr
    assert "zygote.py" not in r.stderr  # the harness frame is not shown to the model
    assert sb.run("import sys; sys.exit(3)").exit_code == 3
    v = exec_verdict(sb.run("print(1/0)"))
    assert v.outcome is Outcome.FAIL and "ZeroDivisionError" in v.feedback


def test_infinite_loop_times_out(sb: Sandbox) -> None:
    before = sb.zygote_pids()
    t0 = time.monotonic()
    r = sb.run("while True:\n    pass", timeout_s=1.0)
    assert r.outcome is Outcome.TIMEOUT and r.timed_out and exec_verdict(r).outcome is Outcome.TIMEOUT
    assert time.monotonic() - t0 < 4.0
    r = sb.run("import time\ntime.sleep(60)", timeout_s=0.5)  # wall clock, not CPU
    assert r.outcome is Outcome.TIMEOUT and r.duration_s < 3.0
    _assert_healthy(sb, before)


def test_closed_stdout_does_not_end_the_watch(sb: Sandbox) -> None:
    # The zygote watches the process itself (pidfd), not just its pipes.
    before = sb.zygote_pids()
    r = sb.run("import os, time\nos.close(1)\nos.close(2)\ntime.sleep(60)", timeout_s=0.5)
    assert r.outcome is Outcome.TIMEOUT
    _assert_healthy(sb, before)


def test_fork_bomb_is_contained(sb: Sandbox) -> None:
    before = sb.zygote_pids()
    code = "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n"
    r = sb.run(code, timeout_s=1.0)
    assert r.outcome is Outcome.TIMEOUT
    _assert_healthy(sb, before)


def test_memory_bomb_is_contained(sb: Sandbox) -> None:
    before = sb.zygote_pids()
    r = sb.run("x = bytearray(8 * 1024**3)\nprint('allocated')")
    assert r.outcome is Outcome.FAIL and "MemoryError" in r.stderr and "allocated" not in r.stdout
    r = sb.run("chunks = []\nwhile True:\n    chunks.append(b'x' * 10**7)")
    assert r.outcome is Outcome.FAIL and "MemoryError" in r.stderr
    _assert_healthy(sb, before)


def test_huge_output_is_capped(sb: Sandbox) -> None:
    before = sb.zygote_pids()
    r = sb.run("while True:\n    print('x' * 10000)")
    assert r.outcome is Outcome.ERROR and r.reason == "output_limit" and r.stdout_truncated
    assert 0 < len(r.stdout) <= 256 * 1024
    r = sb.run("import sys\nsys.stderr.write('e' * 10**7)")
    assert r.stderr_truncated and len(r.stderr) <= 256 * 1024
    # Files are capped too (RLIMIT_FSIZE).
    r = sb.run("open('big', 'wb').write(b'x' * (64 << 20))", limits=Limits(file_mb=1))
    assert r.outcome is not Outcome.PASS
    _assert_healthy(sb, before)


def test_no_network(sb: Sandbox) -> None:
    before = sb.zygote_pids()
    # A server on the host's loopback must be unreachable from inside.
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    port = srv.getsockname()[1]
    try:
        code = f"""
import socket
for addr in [("127.0.0.1", {port}), ("1.1.1.1", 80), ("8.8.8.8", 53)]:
    s = socket.socket()
    s.settimeout(2)
    try:
        s.connect(addr)
        print("CONNECTED", addr)
    except OSError as e:
        print("blocked", addr, e.errno)
try:
    socket.getaddrinfo("pypi.org", 443)
    print("RESOLVED")
except OSError:
    print("no dns")
print([n for _, n in socket.if_nameindex()])
"""
        r = sb.run(code)
    finally:
        srv.close()
    assert r.outcome is Outcome.PASS, r.stderr
    assert "CONNECTED" not in r.stdout and "RESOLVED" not in r.stdout
    assert r.stdout.count("blocked") == 3 and "['lo']" in r.stdout
    _assert_healthy(sb, before)


def test_no_writes_outside_scratch(sb: Sandbox) -> None:
    before = sb.zygote_pids()
    tag = "pf_escape_" + secrets.token_hex(4)
    targets = [
        f"/tmp/{tag}",
        f"/var/tmp/{tag}",
        f"/dev/shm/{tag}",
        f"/run/lock/{tag}",
        f"/root/{tag}",
        f"/etc/{tag}",
        str(REPO / tag),
        f"{Path.home()}/{tag}",
        f"/{tag}",
    ]
    code = f"""
import os
print("cwd", os.getcwd())
open("inside.txt", "w").write("ok")
print("inside", open("inside.txt").read())
for path in {targets!r}:
    try:
        with open(path, "w") as f:
            f.write("escaped")
        print("WROTE", path)
    except OSError as e:
        print("denied", path, e.errno)
try:
    os.listdir("/root/.ssh")
    print("SAW /root/.ssh")
except OSError:
    pass
"""
    r = sb.run(code)
    assert r.outcome is Outcome.PASS, r.stderr
    assert "inside ok" in r.stdout and "WROTE" not in r.stdout and "SAW" not in r.stdout
    assert r.stdout.count("denied") == len(targets)
    for t in targets:
        assert not Path(t).exists()
    # Each run gets a fresh scratch dir: the file from the previous run is gone.
    r2 = sb.run("import os\nprint(os.listdir('.'))")
    assert "inside.txt" not in r2.stdout
    _assert_healthy(sb, before)


def test_child_outliving_parent_is_killed(sb: Sandbox) -> None:
    before = sb.zygote_pids()
    code = """
import os, time
pid = os.fork()
if pid == 0:
    os.setsid()               # escape the process group
    if os.fork() == 0:        # and double-fork into a daemon
        while True:
            time.sleep(0.05)
    os._exit(0)
os.waitpid(pid, 0)
print("parent done")
"""
    r = sb.run(code)
    assert r.outcome is Outcome.PASS and "parent done" in r.stdout
    _assert_healthy(sb, before)  # asserts no process of the sandbox uids survived
    # Same when the parent is killed by the timeout while the daemon runs.
    r = sb.run(code.replace('print("parent done")', "time.sleep(60)"), timeout_s=0.5)
    assert r.outcome is Outcome.TIMEOUT
    _assert_healthy(sb, before)


def test_kill_parent_and_zygote(sb: Sandbox) -> None:
    before = sb.zygote_pids()
    code = f"""
import os, signal
targets = [os.getppid(), 1, {os.getpid()}] + {before!r}
for pid in targets:
    try:
        os.kill(pid, signal.SIGKILL)
        print("sent", pid)
    except OSError as e:
        print("refused", pid, e.errno)
print("alive")
"""
    r = sb.run(code)
    assert r.outcome is Outcome.PASS and "alive" in r.stdout
    # kill(-1) reaches only processes of the sandbox's own uid in its own PID namespace:
    # here, the program's own child (the program is that namespace's init, which kill(-1)
    # skips), and nothing outside.
    code = """
import os, signal, time
child = os.fork()
if child == 0:
    time.sleep(30)
    os._exit(0)
os.kill(-1, signal.SIGKILL)
_, status = os.waitpid(child, 0)
print("child killed" if os.WIFSIGNALED(status) and os.WTERMSIG(status) == 9 else "child lived")
"""
    r = sb.run(code)
    assert r.outcome is Outcome.PASS and r.stdout == "child killed\n"
    _assert_healthy(sb, before)


def test_segfault_via_ctypes(sb: Sandbox) -> None:
    before = sb.zygote_pids()
    r = sb.run("import ctypes\nctypes.string_at(0)")
    assert r.outcome is Outcome.ERROR and r.reason == "signal" and r.signal == 11
    v = exec_verdict(r)
    assert v.outcome is Outcome.ERROR and "crashed" in v.feedback
    _assert_healthy(sb, before)


def test_stdin(sb: Sandbox) -> None:
    before = sb.zygote_pids()
    r = sb.run("print(input())")
    assert r.outcome is Outcome.FAIL and "EOFError" in r.stderr  # no stdin: EOF, not a hang
    r = sb.run("print(input()[::-1])", stdin="hello\n")
    assert r.outcome is Outcome.PASS and r.stdout == "olleh\n"
    big = "x" * (3 << 20)  # larger than a pipe buffer: must not deadlock
    r = sb.run("import sys\nprint(len(sys.stdin.read()))", stdin=big)
    assert r.stdout == f"{len(big)}\n"
    _assert_healthy(sb, before)


def test_environment_is_scrubbed(sb: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PF_SECRET_TOKEN", "hunter2")
    r = sb.run("import os\nprint(sorted(os.environ))\nprint(os.getuid())")
    assert "PF_SECRET_TOKEN" not in r.stdout and "hunter2" not in r.stdout
    assert int(r.stdout.split()[-1]) != 0  # not root


def test_self_verify_requires_reaching_the_end(sb: Sandbox) -> None:
    before = sb.zygote_pids()
    assert self_verify("x = 3\nprint(x * 2 == 6)", sandbox=sb).outcome is Outcome.PASS
    v = self_verify("print('four is', 2 + 2)\nprint(2 + 2 == 5)", sandbox=sb)
    assert v.outcome is Outcome.FAIL and v.reason == "check_false"
    # The program's own output comes back to the model (repair) and is stored; the
    # harness's end marker is not part of it.
    assert "four is 4" in v.feedback and "__proofflow_done" not in v.feedback
    assert str(v.details["stdout"]).rstrip().endswith("False") and "__proofflow_done" not in str(v.details)
    # The check sits after sys.exit(0): it never ran, so this is not "checked".
    v = self_verify("import sys\nsys.exit(0)\nassert 1 == 2\nprint(True)", sandbox=sb)
    assert v.outcome is Outcome.FAIL and v.reason == "not_checked"
    v = self_verify("print(True)\nimport sys\nsys.exit(0)\nprint(1 == 2)", sandbox=sb)
    assert v.outcome is Outcome.FAIL and v.reason == "not_checked"
    v = self_verify("print(True)\nimport os\nos._exit(0)", sandbox=sb)
    assert v.outcome is Outcome.FAIL and v.reason == "not_checked"
    v = self_verify("print(True)\nraise RuntimeError('late')", sandbox=sb)
    assert v.outcome is Outcome.FAIL and v.reason == "exception"
    v = self_verify("print('maybe')", sandbox=sb)
    assert v.outcome is Outcome.FAIL and v.reason == "no_boolean"
    v = self_verify("while True: pass", sandbox=sb, timeout_s=0.5)
    assert v.outcome is Outcome.TIMEOUT
    # Printing "True" plus a guessed marker does not help: the marker is random per run.
    r = sb.run("print(True)\nimport sys\nsys.exit(0)", marker="__proofflow_done_x")
    assert self_verify_verdict(r, "__proofflow_done_y").outcome is Outcome.FAIL
    _assert_healthy(sb, before)


def test_thread_safe_concurrent_runs(sb: Sandbox) -> None:
    errors: list[str] = []

    def work(i: int) -> None:
        for j in range(10):
            r = sb.run(f"print({i} * 100 + {j})")
            if r.stdout != f"{i * 100 + j}\n":
                errors.append(f"{i},{j}: {r}")

    threads = [threading.Thread(target=work, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def test_dead_zygote_is_replaced() -> None:
    with Sandbox(size=1) as s:
        (pid,) = s.zygote_pids()
        os.kill(pid, 9)
        s._pool.workers()[0].child.proc.wait()  # type: ignore[union-attr]
        r = s.run("print(1)")  # the run on the dead zygote reports a sandbox error ...
        assert r.outcome is Outcome.ERROR and r.reason == "sandbox_error"
        r = s.run("print(1)")  # ... and the pool has replaced it
        assert r.outcome is Outcome.PASS and s.zygote_pids() != [pid]


def test_zygotes_do_not_leak_descriptors(sb: Sandbox) -> None:
    def open_fds() -> int:
        return sum(len(os.listdir(f"/proc/{pid}/fd")) for pid in sb.zygote_pids())

    sb.run("pass")
    before = open_fds()
    for _ in range(40):
        sb.run("print('x')", stdin="abc")
    assert open_fds() == before


_FORK_4_X_800MB = r"""
import os, time
kids = []
for i in range(4):
    try:
        pid = os.fork()
    except OSError:  # RLIMIT_NPROC (the no-cgroup budget) refuses the fork
        continue
    if pid == 0:
        b = bytearray(800 * 1024 * 1024)
        b[::4096] = b"x" * len(b[::4096])  # touch every page: resident, not just reserved
        time.sleep(3)  # hold it while the others allocate (a loaded machine staggers the forks)
        os._exit(0)
    kids.append(pid)
print("allocated:", sum(os.waitpid(p, 0)[1] == 0 for p in kids))
"""


def test_memory_is_capped_per_execution_not_per_process() -> None:
    # Issue 12.9: RLIMIT_AS is per process; 4 forks x 800 MB used 3.3 GB in one execution.
    with Sandbox(size=1, limits=Limits(memory_mb=1024, memory_budget_mb=1024)) as s:
        r = s.run(_FORK_4_X_800MB, timeout_s=30)
        assert r.outcome is Outcome.PASS, r.stderr
        allocated = int(r.stdout.split("allocated:")[1])
        assert allocated <= 1  # 1024 MB for the whole execution: one 800 MB child fits
        if r.details.get("memory_cap", "rlimit") != "rlimit":
            assert r.details["memory_peak_mb"] <= 1024 + 1 and r.details["oom_kills"] >= 3
        _assert_healthy(s)


def test_no_user_namespaces_inside() -> None:
    # Issue 12.9: unshare(CLONE_NEWUSER) used to succeed inside the sandbox.
    code = (
        "import ctypes, os, subprocess\n"
        "libc = ctypes.CDLL(None, use_errno=True)\n"
        "print('unshare', libc.unshare(0x10000000), ctypes.get_errno())\n"
        "r = subprocess.run(['unshare', '-U', 'true'], capture_output=True, text=True)\n"
        "print('unshare -U', r.returncode)\n"
        "import threading; t = threading.Thread(target=print, args=('threads work',)); t.start(); t.join()\n"
    )
    with Sandbox(size=1) as s:
        r = s.run(code)
    assert r.outcome is Outcome.PASS, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "unshare -1 1"  # EPERM
    assert lines[1] != "unshare -U 0"
    assert lines[2] == "threads work"  # clone3 -> ENOSYS -> libc falls back to clone


def test_budget_without_cgroup_bounds_process_count() -> None:
    from proofflow.verifiers.sandbox.limits import fallback_nproc

    assert fallback_nproc(64, 1024, 2048) == 2
    assert fallback_nproc(64, 1024, 512) == 1
    assert fallback_nproc(8, 256, 1 << 20) == 8


# --------------------------------------------------------------- what a program can see
# Issue 20.3: a program run by the sandbox (pot, csv) read the benchmark's answer key,
# the project's source, any world-readable file and the host's /proc. Each case below
# first shows the host can read the thing, so "unreadable inside" is the sandbox's doing.

_TRY_READ = """
import os, sys
for path in {paths!r}:
    try:
        with open(path, "rb") as f:
            f.read(64)
        print("READ", path)
    except OSError as e:
        print("denied", path, e.errno)
"""


def _read_attempts(sb: Sandbox, paths: list[str]) -> list[str]:
    r = sb.run(_TRY_READ.format(paths=paths))
    assert r.outcome is Outcome.PASS, r.stderr
    lines = r.stdout.splitlines()
    assert len(lines) == len(paths)
    return lines


def test_benchmark_data_is_unreadable(sb: Sandbox) -> None:
    data = REPO.parent / "shared" / "data"
    answer_keys = sorted(str(p) for p in data.glob("*/*.jsonl"))
    assert answer_keys, f"no benchmark files under {data} to try"
    assert Path(answer_keys[0]).read_bytes()[:1]  # the host reads them
    relative = [os.path.relpath(p, REPO) for p in answer_keys[:3]]  # ../shared/data/...
    # The relative paths from the program's own directory and after it chdir()s to where
    # the project would be: neither reaches the files.
    code = _TRY_READ.format(paths=answer_keys + relative) + f"""
try:
    os.chdir({str(REPO)!r})
    print("CHDIR")
except OSError:
    pass
for path in {relative!r}:
    try:
        open(path).read(1)
        print("READ", path)
    except OSError:
        print("denied", path)
print(sorted(os.listdir("/")))
"""
    r = sb.run(code)
    assert r.outcome is Outcome.PASS, r.stderr
    assert "READ" not in r.stdout and "CHDIR" not in r.stdout
    assert r.stdout.count("denied") == len(answer_keys) + 2 * len(relative)
    root = eval(r.stdout.splitlines()[-1])  # the program's own listing of "/"
    assert not {"work", "home", "data", "var", "mnt", "opt", "srv"} & set(root), root


def test_database_project_source_and_host_secrets_are_unreadable(sb: Sandbox, tmp_path: Path) -> None:
    from proofflow.storage.db import Store

    # A DuckDB file where the test made it (under /tmp) and one outside /tmp, both
    # world-readable: only the sandbox's own root can keep them out.
    outside = Path(tempfile.mkdtemp(prefix="pf-sandbox-", dir="/var/tmp"))
    try:
        dbs = [tmp_path / "runs.duckdb", outside / "runs.duckdb"]
        for db in dbs:
            Store(db).init()
            os.chmod(db, 0o644)
            assert db.stat().st_size > 0
        os.chmod(outside, 0o755)
        paths = [str(db) for db in dbs] + [
            str(REPO / "proofflow" / "__init__.py"),
            str(REPO / "pyproject.toml"),
            "/etc/shadow",
            "/etc/passwd",
            str(Path.home() / ".bashrc"),
        ]
        assert (REPO / "proofflow" / "__init__.py").read_text()
        lines = _read_attempts(sb, paths)
    finally:
        shutil.rmtree(outside, ignore_errors=True)
    assert [line.split()[0] for line in lines] == ["denied"] * len(paths), lines
    # The project is not importable either (its package lives in the project tree).
    r = sb.run("import proofflow")
    assert r.outcome is Outcome.FAIL and "ModuleNotFoundError" in r.stderr


def test_a_development_install_on_sys_path_is_not_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    # A project installed in development mode puts its source tree on sys.path (a .pth
    # file); the new root binds the interpreter's prefixes, never such an entry.
    from proofflow.verifiers.sandbox import isolation

    monkeypatch.setattr("sys.path", [*sys.path, str(REPO), str(REPO.parent)])
    bound = isolation._interpreter_paths("/tmp")
    assert os.path.realpath(sys.base_prefix) in bound
    assert not [p for p in bound if str(REPO).startswith(p) or p.startswith(str(REPO.parent))], bound


def test_host_processes_are_invisible(sb: Sandbox) -> None:
    marker_digits = "".join(secrets.choice("123456789") for _ in range(12))
    marker = f"0.000{marker_digits}"  # GNU sleep adds its arguments: 60.000... seconds
    sleeper = subprocess.Popen(["sleep", "60", marker])
    try:
        deadline = time.monotonic() + 5.0  # until the child has exec'd sleep
        while marker.encode() not in Path(f"/proc/{sleeper.pid}/cmdline").read_bytes():
            assert time.monotonic() < deadline, "the host never saw the marker"
            time.sleep(0.01)
        code = f"""
import os
pids = sorted(int(p) for p in os.listdir("/proc") if p.isdigit())
print("pids", pids)
try:
    print("OPENED", open("/proc/{sleeper.pid}/cmdline", "rb").read())
except OSError as e:
    print("denied", e.errno)
seen = []
for p in pids:
    try:
        if {marker!r}.encode() in open(f"/proc/{{p}}/cmdline", "rb").read():
            seen.append(p)
    except OSError:
        pass
print("seen", seen)
"""
        r = sb.run(code)
    finally:
        sleeper.kill()
        sleeper.wait()
    assert r.outcome is Outcome.PASS, r.stderr
    out = r.stdout.splitlines()
    assert out[0] == "pids [1]"  # the program itself, pid 1 of its own namespace
    assert out[1].startswith("denied") and out[2] == "seen []", out


def test_own_proc_shows_only_its_namespace(sb: Sandbox) -> None:
    code = """
import os, time
r, w = os.pipe()
child = os.fork()
if child == 0:
    os.close(w)
    os.read(r, 1)  # wait until the parent has looked
    os._exit(0)
pids = sorted(int(p) for p in os.listdir("/proc") if p.isdigit())
print(os.getpid(), child, pids)
print(os.readlink("/proc/self") == str(os.getpid()))
print(open("/proc/self/status").read().count("NSpid"))
os.write(w, b"x")
os.waitpid(child, 0)
"""
    r = sb.run(code)
    assert r.outcome is Outcome.PASS, r.stderr
    me, child, pids = r.stdout.splitlines()[0].split(" ", 2)
    assert me == "1" and eval(pids) == [1, int(child)]
    assert r.stdout.splitlines()[1:] == ["True", "1"]


def test_programs_still_have_their_libraries(sb: Sandbox) -> None:
    # The canary for the minimal root: what pot/csv programs use still works (the stdlib,
    # installed packages such as sympy, /dev/null and /dev/urandom, time zones, a
    # subprocess from /usr/bin, a scratch file).
    code = """
import fractions, math, os, subprocess, zoneinfo
import sympy
x = sympy.Symbol("x")
print(sympy.solve(x**2 - 4, x), fractions.Fraction(1, 3) + fractions.Fraction(1, 6), math.comb(5, 2))
open("/dev/null", "w").write("discarded")
print(len(os.urandom(8)), len(open("/dev/urandom", "rb").read(8)))
print(zoneinfo.ZoneInfo("UTC").key)
print(subprocess.run(["sort"], input="b\\na\\n", capture_output=True, text=True).stdout.split())
open("notes.txt", "w").write("scratch")
print(open("notes.txt").read())
"""
    r = sb.run(code, timeout_s=20)
    assert r.outcome is Outcome.PASS, r.stderr
    assert r.stdout.splitlines() == ["[-2, 2] 1/2 10", "8 8", "UTC", "['a', 'b']", "scratch"]
