"""CoqChecker: the FormalChecker for Coq, a thread-safe pool of warm sessions or one coqc per check."""

from __future__ import annotations

from proofflow.verifiers.coq.common import CoqConfig, coq_version
from proofflow.verifiers.coq.coqc import check_coqc, header_errors
from proofflow.verifiers.coq.rules import session_commands
from proofflow.verifiers.coq.session import CoqSession
from proofflow.verifiers.formal.types import CheckResult, FormalProblem, ProcessStats
from proofflow.verifiers.procs import NoWorkerFree, Pool


class CoqChecker:
    """FormalChecker for Coq: a thread-safe pool of warm sessions, or one coqc per check."""

    name = "coq"

    def __init__(self, config: CoqConfig | None = None) -> None:
        self.config = config or CoqConfig()
        self.version = coq_version(self.config.coqc)
        self._stats = ProcessStats()
        # A session is recycled (fresh process, fresh scratch dir) after recycle_after checks.
        self._pool: Pool[CoqSession] = Pool(
            lambda: CoqSession(self.config, self.version, self._stats),
            max(1, self.config.workers),
            recycle_after=self.config.recycle_after,
            name="coq session",
        )

    def __enter__(self) -> CoqChecker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._pool.close()

    @property
    def stats(self) -> dict[str, int]:
        return {"spawns": self._stats.spawns, "header_loads": self._stats.header_loads}

    def check_header(self, header: str) -> list[str]:
        """The header's errors in this Coq installation (none: it elaborates), so a run
        whose environment lacks a library stops before any model call (issue 20.2)."""
        return header_errors(self.config, header)

    def check(self, problem: FormalProblem, proof_source: str) -> CheckResult:
        # Commands that would break the session's isolation or protocol (Reset, BackTo,
        # Load, Quit, Cd, Redirect, Declare ML Module ...) are refused before Coq sees them.
        if session_commands(proof_source):
            return CheckResult("rejected", self.name, self.version, rejections=["session_command"])
        if self.config.mode == "coqc":
            return check_coqc(self.config, self.version, problem, proof_source)
        # Prefer a session whose header is loaded (BackTo is ~free; a different header
        # costs Reset Initial + its Requires). An exception out of the check leaves the
        # session's state unknown: the lease replaces it.
        try:
            with self._pool.lease(
                self.config.acquire_timeout_s, prefer=lambda s: s.header == problem.header and s.alive()
            ) as session:
                return session.check(problem, proof_source)
        except NoWorkerFree as exc:
            # Every session stayed busy: out of time, like a check that overran (procs.NoWorkerFree).
            return CheckResult("timeout", self.name, self.version, detail=str(exc))
