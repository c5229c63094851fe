"""Before any model call of a prove run: can the configured checker environment elaborate
the problems' headers at all?

A Lean without Mathlib judges every candidate of a miniF2F run `fail` ("unknown namespace
`BigOperators`" at the header), and a run that reads 0 proved after paying for every
sample looks like a result (issue 20.2). So each distinct header of the problem set is
elaborated once, in the same checker (and the same warm processes) the run will use, and a
header that fails stops the run with one line that names what is missing and how to point
proofflow at a Lean project that has it (Coq: the header alone through coqc; the REPL
pool: a REPL loads it; Kimina: the header alone sent to the server, whose own Lean project
decides). A checker without `check_header` is not checked here; its header failures
reach candidates only as `crash` (never `fail`, never cached).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from proofflow.verifiers import registry
from proofflow.verifiers.formal import FormalProblem

# The libraries every Lean toolchain ships; any other import needs a Lean project.
_CORE_LEAN = {"Init", "Std", "Lean", "Lake"}
_IMPORT = re.compile(r"^\s*import\s+(.+?)\s*$", re.MULTILINE)
_UNKNOWN_MODULE = re.compile(r"unknown module prefix '([\w.]+)'|module '?([\w.]+)'? (?:does not exist|not found)"
                             r"|object file \S*?/([\w/]+)\.olean"
                             r"|bound to logical path ([\w.]+)")  # Coq: a Require of a library not installed


@runtime_checkable
class HeaderChecker(Protocol):
    def check_header(self, header: str) -> list[str]:
        """The header's elaboration errors in this checker's environment (none: it elaborates)."""
        ...


class HeaderEnvironmentError(RuntimeError):
    """A problem header the configured environment cannot elaborate (one line)."""

    resumable = False  # nothing was stored: the CLI offers no resume line (commands/common.py)


@dataclass(frozen=True)
class HeaderFailure:
    header: str
    problems: tuple[str, ...]   # names of the problems with this header
    errors: tuple[str, ...]     # the checker's error texts


def imports_of(header: str) -> list[str]:
    """The modules a Lean header imports, in order."""
    return [m for line in _IMPORT.findall(header) for m in line.split()]


def missing_modules(header: str, errors: Sequence[str]) -> list[str]:
    """The modules the environment lacks: named by the errors where they say so, else the
    header's imports beyond the core library."""
    named = [next(g for g in m.groups() if g).replace("/", ".").rstrip(".")
             for e in errors for m in _UNKNOWN_MODULE.finditer(e)]
    if named:
        return list(dict.fromkeys(named))
    return [m for m in imports_of(header) if m.split(".")[0] not in _CORE_LEAN]


def header_failures(checker: object, problems: Sequence[FormalProblem]) -> list[HeaderFailure]:
    """Each distinct header of `problems` elaborated once; those that fail. A checker
    without `check_header` has nothing to say here (see the module's docstring)."""
    if not isinstance(checker, HeaderChecker):
        return []
    by_header: dict[str, list[str]] = {}
    for p in problems:
        by_header.setdefault(p.header, []).append(p.name)
    out = []
    for header, names in by_header.items():
        errors = checker.check_header(header)
        if errors:
            out.append(HeaderFailure(header, tuple(names), tuple(errors)))
    return out


def failure_line(failures: Sequence[HeaderFailure], total: int, backend: str) -> str:
    """One line: how many problems, the first error, what is missing, and the way out."""
    first = failures[0]
    count = sum(len(f.problems) for f in failures)
    error = " ".join(first.errors[0].split())[:200]
    missing = missing_modules(first.header, first.errors)
    plural = "s" if len(missing) > 1 else ""
    what = f"the module{plural} {', '.join(missing)}" if missing else "what the header needs"
    lacks = f"; this {backend} environment does not have {what}"
    way_out = registry.backend(backend).environment_help
    return (f"the configured {backend} environment cannot elaborate the header of {count} of {total} problem(s) "
            f"(first: {first.problems[0]}): {error}{lacks}; nothing was generated or checked; {way_out}")


def require_headers(checker: object, problems: Sequence[FormalProblem], backend: str) -> None:
    """Raise HeaderEnvironmentError (one line) unless every header elaborates."""
    failures = header_failures(checker, problems)
    if failures:
        raise HeaderEnvironmentError(failure_line(failures, len(problems), backend))
