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


# --- issue 20.8: an unknown key is an error naming it, one line per key --------------------


def test_a_typo_in_any_section_is_one_line_naming_the_key_and_the_nearest(tmp_path: Path) -> None:
    from proofflow.config_errors import ConfigError

    cfg = tmp_path / "config.toml"
    cfg.write_text("[solve]\nsampels = 4\n[endpoint.price]\ngpu_hr = 1\n[storage]\nflush_interval = 1\n"
                   "[problems]\nmax_line_byte = 10\n[solv]\nx = 1\n")
    with pytest.raises(ConfigError) as err:
        load_settings(cfg)
    lines = str(err.value).splitlines()
    assert f'{cfg}: [solve] sampels: unknown key (did you mean "samples"?)' in lines
    assert f'{cfg}: [endpoint.price] gpu_hr: unknown key (did you mean "gpu_hour"?)' in lines
    assert f'{cfg}: [storage] flush_interval: unknown key (did you mean "flush_interval_s"?)' in lines
    assert f'{cfg}: [problems] max_line_byte: unknown key (did you mean "max_line_bytes"?)' in lines
    assert f'{cfg}: [solv]: unknown section (did you mean "solve"?)' in lines
    assert len(lines) == 5  # one line per key, none of pydantic's multi-line blocks


def test_a_bad_value_is_one_line_naming_where_it_came_from(tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    from proofflow.config_errors import ConfigError

    cfg = tmp_path / "c.toml"
    cfg.write_text("[solve]\nsamples = 0\n")
    with pytest.raises(ConfigError, match=r"^.*c\.toml: \[solve\] samples: Input should be greater than or equal to 1"):
        load_settings(cfg)
    monkeypatch.setenv("PROOFFLOW_SAMPLING__MAX_TOKENS", "many")
    with pytest.raises(ConfigError) as err:
        load_settings()
    assert str(err.value).startswith("environment variable PROOFFLOW_SAMPLING__MAX_TOKENS: [sampling] max_tokens:")
    monkeypatch.delenv("PROOFFLOW_SAMPLING__MAX_TOKENS")
    with pytest.raises(ConfigError, match=r"^command line: \[solve\] strategy: Input should be"):
        load_settings(None, {"solve.strategy": "nope"})


def test_unknown_environment_keys_are_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    from proofflow.config_errors import ConfigError

    monkeypatch.setenv("PROOFFLOW_SOLVE__SAMPELS", "3")
    with pytest.raises(ConfigError) as err:
        load_settings()
    assert str(err.value) == ('environment variable PROOFFLOW_SOLVE__SAMPELS: [solve] sampels: '
                              'unknown key (did you mean "samples"?)')
    monkeypatch.delenv("PROOFFLOW_SOLVE__SAMPELS")
    monkeypatch.setenv("PROOFFLOW_SOLV__SAMPLES", "3")  # pydantic-settings ignores an unknown section
    monkeypatch.setenv("PROOFFLOW_SOLVE_SAMPLES", "3")  # one underscore where two were meant
    with pytest.raises(ConfigError) as err:
        load_settings()
    lines = str(err.value).splitlines()
    assert 'environment variable PROOFFLOW_SOLV__SAMPLES: [solv]: unknown section (did you mean "solve"?)' in lines
    assert any(x.startswith("environment variable PROOFFLOW_SOLVE_SAMPLES:") and "PROOFFLOW_SOLVE__SAMPLES" in x
               for x in lines)
    monkeypatch.delenv("PROOFFLOW_SOLV__SAMPLES")
    monkeypatch.delenv("PROOFFLOW_SOLVE_SAMPLES")
    # Variables that are not settings keys are left alone; a correct key still works.
    monkeypatch.setenv("PROOFFLOW_HOME", "/tmp/x")
    monkeypatch.setenv("PROOFFLOW_SOLVE__SAMPLES", "3")
    assert load_settings().solve.samples == 3


def test_every_section_refuses_unknown_keys() -> None:
    from pydantic import BaseModel

    from proofflow.config import ConfigModel, Settings
    from proofflow.config_errors import _model_of

    sections = [_model_of(f.annotation) for f in Settings.model_fields.values()]
    assert sections and all(s is not None and issubclass(s, ConfigModel) for s in sections)
    nested = [_model_of(f.annotation) for s in sections if s for f in s.model_fields.values()]
    assert all(issubclass(m, ConfigModel) for m in nested if m is not None and issubclass(m, BaseModel))


@pytest.mark.parametrize("url", ["not-a-url", "ftp://host/v1", "http://", "127.0.0.1:8000/v1"])
def test_base_urls_must_be_http_with_a_host(url: str) -> None:
    from proofflow.config_errors import ConfigError

    with pytest.raises(ConfigError, match=r"\[endpoint\] base_urls: .* is not an http\(s\) URL"):
        load_settings(None, {"endpoint.base_urls": [url]})
    assert load_settings(None, {"endpoint.base_urls": ["https://gpu1:8000/v1/"]}).endpoint.base_urls == [
        "https://gpu1:8000/v1"]
