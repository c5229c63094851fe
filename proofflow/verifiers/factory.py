"""Which formal checker a run uses: the one place that maps the prove settings to a
checker object (Coq sessions; for Lean the checker program, the REPL pool or a Kimina
server)."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from proofflow.config import ProveConfig
from proofflow.verifiers.formal import FormalChecker


def lean_command(p: ProveConfig, install: bool = True) -> tuple[tuple[str, ...], str | None]:
    """How to run `lean` for the checker program, and the working directory: the
    configured command; `lake env lean` inside a Lean project; `lean` on PATH; else the
    unofficial wasm build (installed on first use, with a one-line notice on stderr)."""
    project = Path(p.lean_project_dir)
    in_project = (project / "lakefile.lean").exists() or (project / "lakefile.toml").exists()
    if p.lean_command:
        return tuple(p.lean_command), str(project) if in_project else None
    if in_project and shutil.which("lake"):
        return ("lake", "env", "lean"), str(project)
    if shutil.which("lean"):
        return ("lean",), None
    from proofflow.verifiers.lean.install import NOTICE, find_wasm_lean
    from proofflow.verifiers.lean.install import install as install_wasm
    wasm = find_wasm_lean()
    if wasm is None:
        if not install:
            raise RuntimeError("Lean backend unavailable: no lean on PATH, no Lean project, and the wasm build "
                               "is not installed (python -m proofflow.verifiers.lean.install)")
        wasm = install_wasm(log=lambda line: print(line, file=sys.stderr))
    print(NOTICE, file=sys.stderr)
    return (str(wasm.lean),), None


# Resident memory of one wasm checker process (Node + the 137 MB module + Lean's heap):
# 1.7-3.3 GB measured (docs/formal.md); the pool is sized so that many fit in memory.
WASM_PROCESS_MB = 3500


def wasm_workers(configured: int, available_mb: int | None = None) -> int:
    """Checker processes for the wasm build: the configured count, but no more than the
    machine's available memory holds (at least one)."""
    if available_mb is None:
        available_mb = available_memory_mb()
    return max(1, min(configured, available_mb // WASM_PROCESS_MB))


def available_memory_mb() -> int:
    """MemAvailable from /proc/meminfo (Linux); a large number where it cannot be read."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) // 1024
    except (OSError, ValueError, IndexError):
        pass
    return 1 << 30


def make_checker(p: ProveConfig) -> FormalChecker:
    """The formal checker the prove settings name (`backend`, and for Lean its kind)."""
    if p.backend == "coq":
        from proofflow.verifiers.coq import CoqChecker, CoqConfig
        return CoqChecker(CoqConfig(timeout_s=p.check_timeout_s, workers=p.workers))
    if p.backend == "lean" and p.lean_checker == "program":
        from proofflow.verifiers.lean.program import LeanProgramChecker, ProgramConfig, is_wasm_command
        command, cwd = lean_command(p)
        # The wasm build is told by its command, here and in ProgramConfig.is_wasm (its memory cap).
        workers = wasm_workers(p.workers) if is_wasm_command(command) else p.workers
        return LeanProgramChecker(ProgramConfig(lean_command=command, project_dir=cwd, timeout_s=p.check_timeout_s,
                                                memory_mb=p.lean_memory_mb, workers=workers))
    if p.backend == "lean" and p.lean_checker == "repl":
        from proofflow.verifiers.lean import LeanConfig, LeanReplChecker, find_lean_toolchain
        cfg = LeanConfig(project_dir=p.lean_project_dir, repl_command=tuple(p.lean_repl_command),
                         timeout_s=p.check_timeout_s, workers=p.workers, memory_mb=p.lean_memory_mb)
        missing = find_lean_toolchain(cfg)
        if missing:
            raise RuntimeError(f"Lean backend unavailable: {missing} (docs/proving.md, 'miniF2F with Lean')")
        return LeanReplChecker(cfg)
    from proofflow.verifiers.lean import KiminaChecker, KiminaConfig
    return KiminaChecker(KiminaConfig(url=p.kimina_url, api_key=p.kimina_api_key, timeout_s=p.check_timeout_s))
