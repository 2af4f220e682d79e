#!/usr/bin/env bash
# Single-GPU readiness check of the paper path at 7B scale (QLoRA / bf16 LoRA SFT at 4,096 tokens,
# padding-free, GRPO step, 4-bit vs merged-bf16 generation): see scripts/gpu_check.py.
#
#     bash scripts/fetch_gpu_wheels.sh        # once, where PyPI is reachable: fills .gpu_wheels/
#     bash scripts/gpu_check.sh               # on the GPU machine, no network needed; <= 8 min
#     bash scripts/gpu_check.sh --dry-run     # CPU, tiny model: every part up to the GPU (CI)
#     bash scripts/gpu_check.sh --parts env,checkpoint,qlora    # a subset; other flags: gpu_check.py --help
#
# With .gpu_wheels/ present (it travels with the working tree, e.g. the device tool's `carry`),
# its wheels are installed offline into a private folder put first on PYTHONPATH (the machine's
# own packages are left as they are), and its tokenizer and data are used when ../shared is absent.
# Results: $OUT (if set) or runs/gpu_check/: results.json and section.md; put a GPU result into
# docs/benchmarks.md with `python scripts/gpu_check.py --write-docs <results.json>`.
set -euo pipefail
cd "$(dirname "$0")/.."
WHEELS="${GPU_WHEELS:-.gpu_wheels}"
DRY=0
for arg in "$@"; do [ "$arg" = "--dry-run" ] && DRY=1; done

if [ -n "${PYTHON:-}" ]; then PY="$PYTHON"
elif [ -x .venv/bin/python ]; then PY=.venv/bin/python
else PY=python3; fi

export PYTHONPATH="$PWD/src:$PWD/evaluators${PYTHONPATH:+:$PYTHONPATH}"
if [ "$DRY" = 0 ] && compgen -G "$WHEELS/wheels/*.whl" >/dev/null; then
  SITE="${GPU_CHECK_SITE:-/tmp/therapy_align_gpu_site}"
  echo "installing $(ls "$WHEELS"/wheels/*.whl | wc -l) carried wheels into $SITE (offline)"
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" \
    "$WHEELS"/wheels/*.whl
  export PYTHONPATH="$SITE:$PYTHONPATH"
fi
# The tokenizer and data: ../shared when present, else the carried copies.
if [ -z "${THERAPY_ALIGN_TOKENIZER:-}" ] && [ ! -d ../shared/tokenizers/llama-2 ] && [ -d "$WHEELS/tokenizer" ]; then
  export THERAPY_ALIGN_TOKENIZER="$PWD/$WHEELS/tokenizer"
fi
if [ -z "${THERAPY_ALIGN_DATA:-}" ] && [ ! -d ../shared/data ] && [ -d "$WHEELS/data" ]; then
  export THERAPY_ALIGN_DATA="$PWD/$WHEELS/data"
fi
export PYTHONUNBUFFERED=1 WANDB_MODE=disabled HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
export PYTORCH_ALLOC_CONF="${PYTORCH_ALLOC_CONF:-expandable_segments:True}"
# The whole check stays under 8 minutes (its parts are time-boxed inside; this is the backstop).
if [ "$DRY" = 1 ]; then LIMIT="${GPU_CHECK_LIMIT:-480}"; else LIMIT="${GPU_CHECK_LIMIT:-480}"; fi
exec timeout --signal=INT --kill-after=20 "$LIMIT" "$PY" scripts/gpu_check.py "$@"
