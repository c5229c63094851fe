"""The one place that maps a formal backend's name to its FormalBackend.

Everything that would otherwise ask "is this Coq or Lean?" asks `backend(name)` instead
(formal/backend.py lists what a backend answers). Adding a backend is its folder under
verifiers/ plus one line in BACKENDS (docs/architecture.md, "Add a formal backend").

Also here, by name: the audit, the cached check and the hole helpers, for callers that
hold a problem (whose `backend` is a name) rather than a FormalBackend.
"""

from __future__ import annotations

from proofflow.verifiers.coq.backend import COQ
from proofflow.verifiers.formal import audit as _audit
from proofflow.verifiers.formal import check_cached as _check_cached
from proofflow.verifiers.formal import fill_hole as _fill_hole
from proofflow.verifiers.formal import mask_failing_lines as _mask_failing_lines
from proofflow.verifiers.formal import split_holes as _split_holes
from proofflow.verifiers.formal import static_rejections as _static_rejections
from proofflow.verifiers.formal.backend import CheckerOptions, FormalBackend
from proofflow.verifiers.formal.cache import VerdictCache
from proofflow.verifiers.formal.policy import AuditPolicy
from proofflow.verifiers.formal.types import CheckResult, FormalChecker, FormalProblem, Hole, Message
from proofflow.verifiers.lean.backend import LEAN, LeanBackend
from proofflow.verifiers.verdict import Verdict

# name → backend. `kimina` is Lean checked by a Kimina server: a Lean problem, Lean's
# rules and prompts, one checker variant (`[prove] backend = "kimina"` is the same as
# `backend = "lean"` with `lean_checker = "kimina"`).
BACKENDS: dict[str, FormalBackend] = {
    "coq": COQ,
    "lean": LEAN,
    "kimina": LeanBackend(checker="kimina"),
}


def names() -> list[str]:
    """Every name a run may choose (`--backend`)."""
    return list(BACKENDS)


def languages() -> list[str]:
    """The distinct problem languages (FormalProblem.backend values): `kimina` is `lean`."""
    return list(dict.fromkeys(b.name for b in BACKENDS.values()))


def backend(name: str | FormalBackend) -> FormalBackend:
    """The backend called `name` (a backend passes through). ValueError naming the known
    ones for anything else."""
    if not isinstance(name, str):
        return name
    try:
        return BACKENDS[name]
    except KeyError:
        raise ValueError(f"unknown formal backend {name!r} (known: {', '.join(BACKENDS)})") from None


def make_checker(name: str, options: CheckerOptions) -> FormalChecker:
    """The checker of backend `name`, run as `options` say."""
    return backend(name).make_checker(options)


def policy(name: str | FormalBackend, **overrides: object) -> AuditPolicy:
    """The backend's default audit policy, with `overrides` (AuditPolicy fields)."""
    return AuditPolicy.for_backend(backend(name), **overrides)


# -- the neutral functions, by the problem's backend name ------------------------------

def audit(problem: FormalProblem, source: str, result: CheckResult,
          policy: AuditPolicy | None = None) -> Verdict:
    """formal.audit by the rules of the problem's backend."""
    return _audit(problem, source, result, policy, backend=backend(problem.backend))


def check_cached(checker: FormalChecker, problem: FormalProblem, source: str, cache: VerdictCache | None,
                 policy: AuditPolicy | None = None) -> tuple[CheckResult, Verdict, bool]:
    """formal.check_cached by the rules of the problem's backend."""
    return _check_cached(checker, problem, source, cache, policy, backend=backend(problem.backend))


def static_rejections(problem: FormalProblem, source: str, policy: AuditPolicy) -> list[str]:
    return _static_rejections(problem, source, policy, backend(problem.backend))


def split_holes(source: str, name: str | FormalBackend) -> list[Hole]:
    return _split_holes(source, backend(name))


def fill_hole(source: str, hole_index: int, proof_text: str, name: str | FormalBackend) -> str:
    return _fill_hole(source, hole_index, proof_text, backend(name))


def mask_failing_lines(source: str, messages: list[Message], name: str | FormalBackend) -> str:
    return _mask_failing_lines(source, messages, backend(name))
