"""The verdict cache: the same proof (checker version, header, statement, source) is never
checked twice; `check_cached` checks or reuses, then audits."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from dataclasses import dataclass

from proofflow.verifiers.formal.audit import audit
from proofflow.verifiers.formal.backend import FormalBackend
from proofflow.verifiers.formal.policy import AuditPolicy
from proofflow.verifiers.formal.types import CheckResult, FormalChecker, FormalProblem
from proofflow.verifiers.verdict import Verdict


def source_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class CacheKey:
    checker: str  # backend + version, e.g. "coq 8.16.1"
    header: str  # hash of the header
    source: str  # hash of statement + proof source


class VerdictCache:
    """(backend+version, header, source) → CheckResult, so the same proof is never checked
    twice. In memory; `persist(key, result)` (e.g. a DuckDB writer, owned by storage/) is
    called on every new entry and `load(key)` is asked on a miss, so a rerun hits."""

    def __init__(
        self,
        persist: Callable[[CacheKey, CheckResult], None] | None = None,
        load: Callable[[CacheKey], CheckResult | None] | None = None,
    ):
        self._data: dict[CacheKey, CheckResult] = {}
        self._lock = threading.Lock()
        self._persist, self._load = persist, load
        self.hits = 0
        self.misses = 0

    @staticmethod
    def key(checker: FormalChecker, problem: FormalProblem, source: str) -> CacheKey:
        # The statement is part of the key: the same text is a different check (audit)
        # against a different problem.
        return CacheKey(
            f"{checker.name} {checker.version}",
            source_hash(problem.header),
            source_hash(problem.name + "\x1f" + problem.statement + "\x1f" + source),
        )

    def get(self, key: CacheKey) -> CheckResult | None:
        with self._lock:
            found = self._data.get(key)
        if found is None and self._load is not None:
            found = self._load(key)
            if found is not None:
                with self._lock:
                    self._data[key] = found
        with self._lock:
            if found is None:
                self.misses += 1
            else:
                self.hits += 1
        return found

    def put(self, key: CacheKey, result: CheckResult) -> None:
        # Timeouts and crashes are not facts about the proof: do not cache them, so a
        # later run with more time (or a healthy checker) tries again.
        if result.status in ("timeout", "crash"):
            return
        with self._lock:
            self._data[key] = result
        if self._persist is not None:
            self._persist(key, result)

    @property
    def hit_rate(self) -> float:
        total = self.hits + self.misses
        return self.hits / total if total else 0.0

    def __len__(self) -> int:
        return len(self._data)


def check_cached(
    checker: FormalChecker,
    problem: FormalProblem,
    source: str,
    cache: VerdictCache | None,
    policy: AuditPolicy | None = None,
    *,
    backend: FormalBackend,
) -> tuple[CheckResult, Verdict, bool]:
    """Check (or reuse) and audit by `backend`'s rules. Returns (result, verdict, was_cached)."""
    key = VerdictCache.key(checker, problem, source) if cache is not None else None
    result = cache.get(key) if cache is not None and key is not None else None
    cached = result is not None
    if result is None:
        result = checker.check(problem, source)
        if cache is not None and key is not None:
            cache.put(key, result)
    return result, audit(problem, source, result, policy, backend=backend), cached
