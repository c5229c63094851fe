"""Where the built-in local vLLM server lives and how it is reached: its config and error.

Shared by install.py (virtualenv + model) and server.py (start / stop / status). The
served model name and port come from proofflow.config, the one place for those defaults,
so the endpoint proofflow calls by default is the server `proofflow serve` starts.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from proofflow.config import DEFAULT_MODEL, DEFAULT_PORT

# The folder the converted SmolLM2 weights go to (named after the weights, not the served name).
_MODEL_DIR_NAME = "smollm2-135m-instruct"


class ServerError(RuntimeError):
    """The local server could not be set up, started or reached."""


def _default_home() -> Path:
    return Path(os.environ.get("PROOFFLOW_HOME") or Path.home() / ".cache" / "proofflow")


def _default_port() -> int:
    return int(os.environ.get("PROOFFLOW_SERVER_PORT") or DEFAULT_PORT)


@dataclass(frozen=True)
class LocalServerConfig:
    """Knobs of the local server. Defaults read PROOFFLOW_HOME and PROOFFLOW_SERVER_PORT."""

    home: Path = field(default_factory=_default_home)
    host: str = "127.0.0.1"
    port: int = field(default_factory=_default_port)
    served_model_name: str = DEFAULT_MODEL
    max_model_len: int = 2048
    kv_cache_gib: int = 1  # VLLM_CPU_KVCACHE_SPACE; 1 GiB is plenty for a 135M model
    startup_timeout_s: float = 300.0  # measured ready time is 33-39 s on 2 cores
    stop_grace_s: float = 20.0
    venv_dir: Path | None = None  # default: home/vllm-venv
    model_dir: Path | None = None  # default: home/models/smollm2-135m-instruct
    # More `vllm serve` flags, e.g. a reasoning parser or tool calling (llm/agent_server.py).
    extra_args: tuple[str, ...] = ()

    @property
    def venv(self) -> Path:
        return self.venv_dir or self.home / "vllm-venv"

    @property
    def venv_python(self) -> Path:
        return self.venv / "bin" / "python"

    @property
    def model_path(self) -> Path:
        return self.model_dir or self.home / "models" / _MODEL_DIR_NAME

    @property
    def log_path(self) -> Path:
        return self.home / f"vllm-{self.port}.log"

    @property
    def pid_path(self) -> Path:
        return self.home / f"vllm-{self.port}.pid"

    @property
    def base_url(self) -> str:
        # A server bound to all interfaces is still reached through loopback from here.
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host
        return f"http://{host}:{self.port}/v1"


@contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """An exclusive advisory lock, released by the OS even if we crash."""
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
