"""verifiers/lean/toolchain.py: how the wasm Lean pool is sized."""

from __future__ import annotations

from proofflow.verifiers.lean.toolchain import WASM_PROCESS_MB, available_memory_mb, wasm_workers


def test_wasm_pool_is_sized_by_memory() -> None:
    assert wasm_workers(8, available_mb=64 * 1024) == 8  # memory for all: the configured count
    assert wasm_workers(8, available_mb=3 * WASM_PROCESS_MB + 10) == 3  # memory for three
    assert wasm_workers(4, available_mb=1000) == 1  # never none: one process at least
    assert wasm_workers(1, available_mb=0) == 1


def test_available_memory_is_read_from_the_machine() -> None:
    mb = available_memory_mb()
    with open("/proc/meminfo", encoding="ascii") as f:
        total = int(next(line for line in f if line.startswith("MemTotal:")).split()[1]) // 1024
    assert 0 < mb <= total
