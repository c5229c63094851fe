"""Which `lean` runs the checker program, and how many of its processes fit: plain
arguments in, a command out (verifiers/ does not read the app's configuration)."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path


def lean_command(configured: tuple[str, ...] = (), project_dir: str = ".",
                 install: bool = True) -> tuple[tuple[str, ...], str | None]:
    """How to run `lean` for the checker program, and the working directory: the
    configured command; `lake env lean` inside a Lean project; `lean` on PATH; else the
    unofficial wasm build (installed on first use, with a one-line notice on stderr)."""
    project = Path(project_dir)
    in_project = (project / "lakefile.lean").exists() or (project / "lakefile.toml").exists()
    if configured:
        return tuple(configured), str(project) if in_project else None
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
