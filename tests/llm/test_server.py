"""The built-in local vLLM server, tested against the real thing (SmolLM2-135M on CPU).

SmolLM2-135M is weak, so these tests assert on the HTTP contract and on bookkeeping
(choices, usage, seeds, process management), never on answers being right.
"""

from __future__ import annotations

import socket
import time
from dataclasses import replace
from pathlib import Path

import httpx
import pytest

from proofflow.llm import server
from proofflow.llm.server import LocalServerConfig, ServerError, ServerStatus

pytestmark = pytest.mark.vllm

PROMPT = [{"role": "user", "content": "What is 2 + 3? Answer with a number."}]


def _chat(st: ServerStatus, **body: object) -> dict:
    payload = {"model": st.model, "messages": PROMPT, "max_tokens": 16, **body}
    resp = httpx.post(f"{st.base_url}/chat/completions", json=payload, timeout=120)
    resp.raise_for_status()
    return resp.json()


def _free_port() -> int:
    # A fresh port rather than a fixed one: others (e.g. the instant test server) use 80xx.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_config_reads_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PROOFFLOW_HOME", str(tmp_path))
    monkeypatch.setenv("PROOFFLOW_SERVER_PORT", "8123")
    cfg = LocalServerConfig()
    assert cfg.port == 8123
    assert cfg.venv == tmp_path / "vllm-venv"
    assert cfg.model_path == tmp_path / "models" / "smollm2-135m-instruct"
    assert cfg.log_path == tmp_path / "vllm-8123.log"
    assert cfg.base_url == "http://127.0.0.1:8123/v1"
    assert replace(cfg, host="0.0.0.0").base_url == "http://127.0.0.1:8123/v1"


def test_models_lists_the_served_model(vllm_server: ServerStatus) -> None:
    assert vllm_server.running
    assert vllm_server.model == "smollm2-135m-instruct"
    resp = httpx.get(f"{vllm_server.base_url}/models", timeout=10)
    assert resp.status_code == 200
    ids = [m["id"] for m in resp.json()["data"]]
    assert ids == ["smollm2-135m-instruct"]


def test_unknown_model_is_404(vllm_server: ServerStatus) -> None:
    payload = {"model": "no-such-model", "messages": PROMPT, "max_tokens": 4}
    resp = httpx.post(f"{vllm_server.base_url}/chat/completions", json=payload, timeout=60)
    assert resp.status_code == 404


def test_chat_n2_with_seed_returns_two_choices_and_usage(vllm_server: ServerStatus) -> None:
    out = _chat(vllm_server, n=2, seed=1234, temperature=1.0)
    assert [c["index"] for c in out["choices"]] == [0, 1]
    for choice in out["choices"]:
        assert isinstance(choice["message"]["content"], str)
        assert choice["finish_reason"] in ("stop", "length")
    usage = out["usage"]
    assert usage["prompt_tokens"] > 0
    assert 0 < usage["completion_tokens"] <= 2 * 16
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]


def test_same_seed_same_text(vllm_server: ServerStatus) -> None:
    first = _chat(vllm_server, seed=7, temperature=1.0, max_tokens=24)
    second = _chat(vllm_server, seed=7, temperature=1.0, max_tokens=24)
    assert first["choices"][0]["message"]["content"] == second["choices"][0]["message"]["content"]


def test_return_token_ids_gives_exact_per_choice_counts(vllm_server: ServerStatus) -> None:
    # vLLM extra parameter: each choice carries its completion token ids, so per-sample
    # token counts are exact (usage only has the sum over the n choices).
    out = _chat(vllm_server, n=3, seed=11, temperature=1.0, max_tokens=40, return_token_ids=True)
    lengths = [len(c["token_ids"]) for c in out["choices"]]
    assert all(0 < n <= 40 for n in lengths)
    assert sum(lengths) == out["usage"]["completion_tokens"]
    assert len(out["prompt_token_ids"]) == out["usage"]["prompt_tokens"]


def _finished_requests(st: ServerStatus) -> float:
    metrics_url = st.base_url.removesuffix("/v1") + "/metrics"
    total = 0.0
    for line in httpx.get(metrics_url, timeout=10).text.splitlines():
        if line.startswith("vllm:request_success_total{"):
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_metrics_count_each_finished_sample(vllm_server: ServerStatus) -> None:
    # vllm:request_success_total{engine,finished_reason,model_name} counts finished
    # sequences: a request with n=2 adds 2, not 1.
    before = _finished_requests(vllm_server)
    _chat(vllm_server, n=2, seed=5, temperature=1.0, max_tokens=8)
    assert _finished_requests(vllm_server) - before == 2


def test_greedy_with_n_above_1_is_rejected(vllm_server: ServerStatus) -> None:
    payload = {"model": vllm_server.model, "messages": PROMPT, "max_tokens": 4, "n": 2, "temperature": 0}
    resp = httpx.post(f"{vllm_server.base_url}/chat/completions", json=payload, timeout=60)
    assert resp.status_code == 400
    assert "greedy" in resp.text


def test_start_reuses_a_running_server(vllm_server: ServerStatus) -> None:
    port = int(vllm_server.base_url.rsplit(":", 1)[1].split("/")[0])
    began = time.monotonic()
    again = server.start(port=port)
    assert time.monotonic() - began < 5
    assert again.running and again.model == vllm_server.model
    assert again.pid == server.status(port).pid


def test_second_setup_is_instant(vllm_server: ServerStatus) -> None:
    result = server.setup()
    assert not result.installed and not result.converted
    assert result.seconds < 2.0
    assert server.is_set_up()


@pytest.mark.slow
def test_status_and_stop_on_a_second_port(vllm_server: ServerStatus) -> None:
    port = _free_port()
    cfg = replace(LocalServerConfig(), port=port, max_model_len=512)
    began = time.monotonic()
    st = server.start(config=cfg, timeout_s=240)
    try:
        assert st.running and st.pid is not None
        assert st.model == "smollm2-135m-instruct"
        assert st.base_url == f"http://127.0.0.1:{port}/v1"
        assert st.log_path.is_file() and "vllm" in st.log_path.read_text().lower()
        print(f"second server ready in {time.monotonic() - began:.1f} s")
    finally:
        stopped = server.stop(config=cfg)
    assert stopped
    after = server.status(config=cfg)
    assert not after.running and after.pid is None
    assert not cfg.pid_path.exists()
    assert not server.stop(config=cfg)  # nothing left to stop
    assert server.status(port=int(vllm_server.base_url.split(":")[2].split("/")[0])).running


@pytest.mark.slow
def test_a_server_that_dies_reports_its_log(vllm_server: ServerStatus, tmp_path: Path) -> None:
    # A "converted" model folder with no weights: vLLM starts, fails to load, and exits.
    broken = tmp_path / "broken-model"
    broken.mkdir()
    (broken / server.MODEL_MARKER).write_text("{}")
    real = LocalServerConfig()
    cfg = replace(real, home=tmp_path, venv_dir=real.venv, model_dir=broken, port=_free_port())
    with pytest.raises(ServerError) as err:
        server.start(config=cfg, timeout_s=240)
    message = str(err.value)
    assert "exited" in message and str(cfg.log_path) in message
    assert "broken-model" in message  # the log tail names the model it could not load
    assert server.status(config=cfg).pid is None


@pytest.mark.slow
def test_a_half_converted_model_is_rebuilt(vllm_server: ServerStatus, tmp_path: Path) -> None:
    real = LocalServerConfig()
    cfg = replace(real, home=tmp_path, venv_dir=real.venv)  # reuse the venv, convert anew
    leftover = cfg.model_path / "model.safetensors"
    leftover.parent.mkdir(parents=True)
    leftover.write_bytes(b"truncated by a crash")  # no marker: an interrupted conversion
    assert not server.is_set_up(cfg)
    result = server.setup(cfg)
    assert not result.installed and result.converted
    assert (cfg.model_path / server.MODEL_MARKER).is_file()
    assert leftover.stat().st_size > 100_000_000  # the real bf16 weights (~270 MB)
    assert (cfg.model_path / "chat_template.jinja").is_file() or "chat_template" in (
        cfg.model_path / "tokenizer_config.json"
    ).read_text()
    assert server.setup(cfg).seconds < 2.0
