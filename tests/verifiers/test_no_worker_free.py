"""One outcome when no checker process is free (issue #16.4): every pooled checker waits
its acquire deadline on `Pool.lease`, then answers `timeout` (TIMEOUT verdict, never
cached): nothing crashed, and the same check may pass when a process is free. Each pool
here has one process, held by the test while the checker asks for it; no process is
started (the pools make their workers lazily and the held one is never asked)."""

from __future__ import annotations

import shutil
import time

import pytest

from proofflow.verifiers.formal import CheckResult, FormalProblem, VerdictCache
from proofflow.verifiers.procs import Pool
from proofflow.verifiers.registry import audit, check_cached
from proofflow.verifiers.verdict import Outcome

LEAN_P = FormalProblem(name="t", header="", statement="theorem t : 1 = 1 := by", backend="lean")
COQ_P = FormalProblem(name="t", header="", statement="Theorem t : 1 = 1.", backend="coq")


def busy_check(pool: Pool, check, problem: FormalProblem, source: str) -> CheckResult:  # type: ignore[type-arg]
    held = pool.acquire()
    try:
        t0 = time.monotonic()
        result = check(problem, source)
        assert time.monotonic() - t0 < 10  # it waited its (short) deadline, not forever
    finally:
        pool.release(held)
    return result


def assert_timeout(result: CheckResult, problem: FormalProblem, source: str) -> None:
    assert result.status == "timeout", result
    assert "no" in result.detail and "worker became free" in result.detail
    assert audit(problem, source, result).outcome is Outcome.TIMEOUT
    cache = VerdictCache()
    cache.put(VerdictCache.key(_Named(), problem, source), result)
    assert len(cache) == 0  # not a fact about the proof: never cached


class _Named:
    name, version = "x", "1"


def test_lean_program_pool_busy_is_a_timeout() -> None:
    from proofflow.verifiers.lean.program import LeanProgramChecker, ProgramConfig

    checker = LeanProgramChecker(ProgramConfig(lean_command=("lean",), version="test", workers=1,
                                               start_timeout_s=0.2, timeout_s=0.05, memory_mb=0))
    try:
        src = "theorem t : 1 = 1 := by rfl\n"
        assert_timeout(busy_check(checker.pool, checker.check, LEAN_P, src), LEAN_P, src)
    finally:
        checker.close()


def test_lean_repl_pool_busy_is_a_timeout() -> None:
    from proofflow.verifiers.lean.repl import LeanConfig, LeanReplChecker

    checker = LeanReplChecker(LeanConfig(repl_command=("repl-not-started",), version="test", workers=1,
                                         acquire_timeout_s=0.3))
    try:
        src = "theorem t : 1 = 1 := by rfl\n"
        assert_timeout(busy_check(checker._pool, checker.check, LEAN_P, src), LEAN_P, src)
    finally:
        checker.close()


@pytest.mark.skipif(not shutil.which("coqtop"), reason="coqtop not found (apt-get install -y coq)")
def test_coq_session_pool_busy_is_a_timeout() -> None:
    from proofflow.verifiers.coq import CoqChecker, CoqConfig

    checker = CoqChecker(CoqConfig(workers=1, acquire_timeout_s=0.3))
    try:
        src = "Theorem t : 1 = 1.\nProof. reflexivity. Qed.\n"
        result = busy_check(checker._pool, checker.check, COQ_P, src)
        assert_timeout(result, COQ_P, src)
        # and once the session is free, the same check runs (and passes)
        _, verdict, cached = check_cached(checker, COQ_P, src, VerdictCache())
        assert verdict.outcome is Outcome.PASS and not cached
    finally:
        checker.close()
