"""Deterministic keys and the layered configuration."""

from __future__ import annotations

from pathlib import Path

import pytest

from proofflow import keys
from proofflow.config import PriceConfig, load_settings


def test_sample_id_is_deterministic_and_position_sensitive() -> None:
    a = keys.sample_id("r1", "p1", "generate", None, 0)
    assert a == keys.sample_id("r1", "p1", "generate", None, 0)
    others = {
        keys.sample_id("r2", "p1", "generate", None, 0),
        keys.sample_id("r1", "p2", "generate", None, 0),
        keys.sample_id("r1", "p1", "repair", None, 0),
        keys.sample_id("r1", "p1", "generate", "s_x", 0),
        keys.sample_id("r1", "p1", "generate", None, 1),
    }
    assert a not in others and len(others) == 5


def test_key_parts_cannot_run_together() -> None:
    assert keys.sample_id("ab", "c", "g", None, 0) != keys.sample_id("a", "bc", "g", None, 0)


def test_seed_is_stable_and_in_range() -> None:
    s = keys.seed_for("s_abc")
    assert s == keys.seed_for("s_abc") and 0 <= s < 2**31
    assert s != keys.seed_for("s_abd")


def test_problem_id_is_content_hash() -> None:
    a = keys.problem_id({"statement": "1+1", "answer": "2"})
    assert a == keys.problem_id({"answer": "2", "statement": "1+1"})
    assert a != keys.problem_id({"statement": "1+1", "answer": "3"})


def test_precedence_defaults_file_env_flags(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "proofflow.toml"
    cfg.write_text('[solve]\nsamples = 7\nrepair_rounds = 3\n[endpoint]\nmodel = "from-file"\n')
    s = load_settings(cfg)
    assert (s.solve.samples, s.solve.repair_rounds, s.endpoint.model) == (7, 3, "from-file")
    monkeypatch.setenv("PROOFFLOW_SOLVE__SAMPLES", "9")
    s = load_settings(cfg)
    assert s.solve.samples == 9 and s.solve.repair_rounds == 3
    s = load_settings(cfg, {"solve.samples": 11, "endpoint.base_urls": "http://a:1/v1, http://b:2/v1/"})
    assert s.solve.samples == 11
    assert s.endpoint.base_urls == ["http://a:1/v1", "http://b:2/v1"]


def test_bad_values_are_named(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="samples"):
        load_settings(None, {"solve.samples": 0})
    cfg = tmp_path / "bad.toml"
    cfg.write_text("[solve\n")
    with pytest.raises(ValueError, match="bad.toml"):
        load_settings(cfg)
    with pytest.raises(ValueError, match="does not exist"):
        load_settings(tmp_path / "missing.toml")


def test_price_is_never_guessed() -> None:
    assert not PriceConfig().configured
    with pytest.raises(ValueError, match="both"):
        PriceConfig(input_per_mtok=1.0)
    with pytest.raises(ValueError, match="not both"):
        PriceConfig(input_per_mtok=1.0, output_per_mtok=2.0, gpu_hour=3.0)
