"""Deterministic identifiers.

A sample's id is a hash of where it sits in a run (run, problem, stage, parent, index),
so a rerun of the same run computes the same ids and finds what is already stored.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any


def _digest(*parts: str, length: int = 20) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(part.encode("utf-8"))
        h.update(b"\x1f")  # unit separator: ("ab","c") and ("a","bc") must differ
    return h.hexdigest()[:length]


def problem_id(content: dict[str, Any]) -> str:
    """Content hash of a problem: the same problem text gets the same id in every run."""
    canonical = json.dumps(content, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return "p_" + _digest(canonical, length=16)


def sample_id(run_id: str, problem: str, stage: str, parent: str | None, index: int) -> str:
    return "s_" + _digest(run_id, problem, stage, parent or "", str(index))


def seed_for(key: str) -> int:
    """A 31-bit seed derived from a key (vLLM accepts any non-negative int)."""
    return int(_digest("seed", key, length=8), 16) & 0x7FFFFFFF


def config_hash(config: dict[str, Any]) -> str:
    canonical = json.dumps(config, sort_keys=True, default=str, separators=(",", ":"))
    return _digest(canonical, length=16)


def run_id_for(name: str) -> str:
    """Runs are addressed by name; the id is derived so two machines agree on it."""
    return "r_" + _digest("run", name, length=16)
