"""Every pool verifiers/ owns keeps working once descriptor numbers pass 1024.

``select.select`` raises "filedescriptor out of range" for fds >= 1024 (FD_SETSIZE); a
long run with many pools and sockets gets there. The check runs in a fresh interpreter
so that every pool (answer workers, sandbox zygotes, Coq sessions, Lean REPLs) is created after 1100
descriptors are already open, and its pipes and sockets get numbers above 1024.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

_SCRIPT = r"""
import json, os, resource, shutil, sys
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (min(4096, hard), hard))
held = [os.open(os.devnull, os.O_RDONLY) for _ in range(1100)]
assert max(held) > 1024
out = {}


def run(name, fn):
    try:
        out[name] = fn()
    except Exception as exc:  # reported per pool, so one failure does not hide another
        out[name] = f"{type(exc).__name__}: {exc}"


def answer_pool():
    from proofflow.verifiers import answer
    # Not decidable by the in-process fast path: goes to a sympy worker process.
    return [answer.check_answer("\\boxed{\\sqrt{4}}", "2").details.get("decided_by"),
            answer.answers_equivalent("\\sqrt{4}", "2"), answer.answers_equivalent("x^2", "x^3")]


def sandbox_pool():
    from proofflow.verifiers.sandbox import Sandbox
    with Sandbox(size=1) as sb:
        r = sb.run("print(6 * 7)")
        return [r.outcome.value, r.stdout]


def coq_pool(mode):
    from proofflow.verifiers.coq import CoqChecker, CoqConfig
    from proofflow.verifiers.formal import FormalProblem
    p = FormalProblem("t", "", "Theorem t : 1 + 1 = 2.", "coq")
    with CoqChecker(CoqConfig(mode=mode, workers=1, timeout_s=60)) as ch:
        return ch.check(p, p.statement + "\nProof. reflexivity. Qed.\n").status


def lean_repl_pool():
    # The Lean REPL pool against the protocol STAND-IN (tests/verifiers/fake_lean_repl.py,
    # checks nothing): a framed answer, then a deadline read that must time out and kill.
    from proofflow.verifiers.formal import FormalProblem
    from proofflow.verifiers.lean import LeanConfig, LeanReplChecker
    fake = os.path.abspath(os.path.join("tests", "verifiers", "fake_lean_repl.py"))
    p = FormalProblem(name="t", header="import Mathlib\n", backend="lean",
                      statement="theorem t (x : ℝ) (h : 2 * x = 4) : x = 2 := by")
    src = p.statement + "\n  linarith\n"
    cfg = LeanConfig(repl_command=(sys.executable, fake), workers=1, timeout_s=2.0, header_timeout_s=30,
                     memory_mb=1024, version="fake-stand-in")
    with LeanReplChecker(cfg) as ch:
        return [ch.check(p, src).status, ch.check(p, src + "-- LOOP").status, ch.check(p, src).status]


run("answer", answer_pool)
run("lean_repl", lean_repl_pool)
if os.geteuid() == 0:
    run("sandbox", sandbox_pool)
if shutil.which("coqtop") and shutil.which("coqc"):
    run("coq_session", lambda: coq_pool("session"))
    run("coq_coqc", lambda: coq_pool("coqc"))
print(json.dumps(out))
"""


def test_pools_work_past_fd_1024() -> None:
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if hard != resource.RLIM_INFINITY and hard < 1200:
        pytest.fail(f"RLIMIT_NOFILE hard limit {hard} < 1200: cannot open enough descriptors")
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.run(
        [sys.executable, "-c", _SCRIPT], capture_output=True, text=True, timeout=600, env=env, cwd=REPO
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["answer"] == ["sympy", True, False], out
    assert out["lean_repl"] == ["complete", "timeout", "complete"], out
    if os.geteuid() == 0:
        assert out["sandbox"] == ["pass", "42\n"], out
    if shutil.which("coqtop") and shutil.which("coqc"):
        assert out["coq_session"] == "complete" and out["coq_coqc"] == "complete", out
