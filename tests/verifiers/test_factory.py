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


def test_prove_settings_set_how_many_checks_a_lean_process_makes_before_a_fresh_one() -> None:
    """`[prove] checker_recycle_after` reaches the Lean program's pool (a cluster run of
    cheap checks raises it: each wasm start costs ~45 s); unset keeps the checker's own."""
    from proofflow.config import ProveConfig
    from proofflow.tasks.checker_settings import make_checker

    raised = make_checker(ProveConfig(backend="lean", lean_command=["/bin/true"], checker_recycle_after=5000))
    default = make_checker(ProveConfig(backend="lean", lean_command=["/bin/true"]))
    try:
        assert raised.config.recycle_after == 5000  # type: ignore[attr-defined]
        assert default.config.recycle_after == 500  # type: ignore[attr-defined]
    finally:
        raised.close()
        default.close()
