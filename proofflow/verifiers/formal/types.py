"""The backend-neutral formal-checker types: a problem, what a checker saw (`CheckResult`),
and the `FormalChecker` protocol every backend's checker implements (the language's other
rules are its FormalBackend, backend.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

# A formal backend's name, as verifiers/registry.py knows it ("coq", "lean"); a third
# backend is one more name there, not a change here.
Backend = str
# "crash" is the checker itself failing (process died, protocol broken): ERROR, never FAIL.
Status = Literal["complete", "incomplete", "error", "timeout", "rejected", "crash"]


@dataclass(frozen=True)
class FormalProblem:
    name: str  # the theorem's name, e.g. "mathd_algebra_10"
    header: str  # imports / opens / options, checked before the source
    statement: str  # exactly as given: Lean `theorem foo ... := by`, Coq `Theorem foo : ... .`
    backend: Backend = "lean"
    informal: str = ""
    split: str | None = None
    source: str = ""  # file it came from
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Message:
    severity: str  # "error" | "warning" | "info"
    text: str
    line: int | None = None  # 1-based, relative to the proof source (not the header)
    column: int | None = None  # 0-based, characters
    end_line: int | None = None
    end_column: int | None = None


@dataclass(frozen=True)
class Hole:
    line: int
    column: int
    goal: str = ""
    kind: str = "sorry"  # sorry | admit | Admitted | Abort
    start: int = 0  # character offsets of the hole token in the source
    end: int = 0


@dataclass
class CheckResult:
    status: Status
    backend: str
    version: str
    messages: list[Message] = field(default_factory=list)
    holes: list[Hole] = field(default_factory=list)
    axioms: list[str] | None = None  # None: not determined (checker stopped before)
    rejections: list[str] = field(default_factory=list)
    duration_s: float = 0.0
    detail: str = ""  # e.g. why the checker crashed

    @property
    def errors(self) -> list[Message]:
        return [m for m in self.messages if m.severity == "error"]


@dataclass
class ProcessStats:
    """Counters shared by every process of one pooled checker (Coq sessions, Lean REPLs):
    the pool replaces processes on recycle, the checker keeps counting."""

    spawns: int = 0
    header_loads: int = 0


@runtime_checkable
class FormalChecker(Protocol):
    name: str  # its backend's name (FormalBackend.name): the raw verdict's verifier
    version: str  # checker version string, part of the cache key

    def check(self, problem: FormalProblem, proof_source: str) -> CheckResult: ...

    def close(self) -> None:
        """Stop the checker's processes / connections (idempotent)."""
        ...
