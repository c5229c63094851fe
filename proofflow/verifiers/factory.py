"""Which formal checker a run uses: the one place that maps the prove settings to a
checker object (Coq sessions, the Lean REPL pool, or a Kimina server)."""

from __future__ import annotations

from proofflow.config import ProveConfig
from proofflow.verifiers.formal import FormalChecker


def make_checker(p: ProveConfig) -> FormalChecker:
    """The formal checker the prove settings name (`backend`, and for Lean its kind)."""
    if p.backend == "coq":
        from proofflow.verifiers.coq import CoqChecker, CoqConfig
        return CoqChecker(CoqConfig(timeout_s=p.check_timeout_s, workers=p.workers))
    if p.backend == "lean":
        from proofflow.verifiers.lean import (
            LeanConfig,
            LeanReplChecker,
            find_lean_toolchain,
        )
        cfg = LeanConfig(project_dir=p.lean_project_dir, repl_command=tuple(p.lean_repl_command),
                         timeout_s=p.check_timeout_s, workers=p.workers, memory_mb=p.lean_memory_mb)
        missing = find_lean_toolchain(cfg)
        if missing:
            raise RuntimeError(f"Lean backend unavailable: {missing} (docs/proving.md, 'miniF2F with Lean')")
        return LeanReplChecker(cfg)
    from proofflow.verifiers.lean import KiminaChecker, KiminaConfig
    return KiminaChecker(KiminaConfig(url=p.kimina_url, api_key=p.kimina_api_key, timeout_s=p.check_timeout_s))
