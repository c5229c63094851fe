"""The `[prove]` settings as the plain arguments a formal checker takes: the caller's side
of verifiers/registry.py (verifiers/ never reads proofflow.config)."""

from __future__ import annotations

from proofflow.config import ProveConfig
from proofflow.verifiers.formal import CheckerOptions, FormalChecker
from proofflow.verifiers.registry import make_checker as make_named_checker


def checker_options(p: ProveConfig, install: bool = True) -> CheckerOptions:
    return CheckerOptions(
        timeout_s=p.check_timeout_s, workers=p.workers, variant=p.lean_checker, memory_mb=p.lean_memory_mb,
        recycle_after=p.checker_recycle_after,
        project_dir=p.lean_project_dir, command=tuple(p.lean_command), repl_command=tuple(p.lean_repl_command),
        url=p.kimina_url, api_key=p.kimina_api_key, install=install,
    )


def make_checker(p: ProveConfig) -> FormalChecker:
    """The formal checker the prove settings name (`backend`, and for Lean its kind)."""
    return make_named_checker(p.backend, checker_options(p))
