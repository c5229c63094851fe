"""How a Lean checker process is capped (lean/program.py memory_limits): RLIMIT_AS for a
native Lean, the wasm heap's maximum (LEAN_WASM_MEMORY_MB) for the wasm build, whose Node
reserves far more address space than it uses. The cap itself is enforced on the real wasm
Lean in test_lean_pool.py."""

from __future__ import annotations

import resource

from proofflow.verifiers.lean.program import WASM_MAX_MEMORY_MB, ProgramConfig, memory_limits

WASM = ("/root/.cache/proofflow/lean-wasm/bin/lean",)


def test_native_lean_gets_an_address_space_limit() -> None:
    limits, env = memory_limits(ProgramConfig(lean_command=("lean",), memory_mb=4096))
    assert (resource.RLIMIT_AS, 4096 * 1024 * 1024) in limits.pairs()
    assert "LEAN_WASM_MEMORY_MB" not in env


def test_wasm_lean_gets_a_heap_maximum_not_an_address_space_limit() -> None:
    cfg = ProgramConfig(lean_command=WASM, memory_mb=600)  # told by the command
    assert cfg.is_wasm
    limits, env = memory_limits(cfg)
    assert all(res != resource.RLIMIT_AS for res, _ in limits.pairs())
    assert env["LEAN_WASM_MEMORY_MB"] == "600"
    # The build's own maximum is the most it can be given.
    _, env = memory_limits(ProgramConfig(lean_command=WASM, memory_mb=16384))
    assert env["LEAN_WASM_MEMORY_MB"] == str(WASM_MAX_MEMORY_MB)
    # No cap asked: the build's default (2 GB), nothing set.
    _, env = memory_limits(ProgramConfig(lean_command=WASM, memory_mb=0))
    assert "LEAN_WASM_MEMORY_MB" not in env


def test_an_explicit_wasm_flag_wins_over_the_command() -> None:
    assert ProgramConfig(lean_command=("lean",), wasm=True).is_wasm
    assert not ProgramConfig(lean_command=WASM, wasm=False).is_wasm
