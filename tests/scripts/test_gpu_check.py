"""scripts/gpu_check.sh --dry-run: the GPU check runs on CPU with the tiny model up to where a GPU
is needed (CI), and a GPU result goes into docs/benchmarks.md between its markers."""

from __future__ import annotations

import pytest
import json
import os
import subprocess

from tests.conftest import REPO_ROOT, SHARED, load_recipe_module

pytestmark = pytest.mark.integration

gpu_check = load_recipe_module(REPO_ROOT / "scripts" / "gpu_check.py", "gpu_check_docs_under_test")


def test_dry_run_runs_every_part_up_to_the_gpu(tmp_path):
    env = {**os.environ, "THERAPY_ALIGN_DATA": str(SHARED / "data"),
           "THERAPY_ALIGN_TOKENIZER": str(SHARED / "tokenizers" / "llama-2")}
    proc = subprocess.run(["bash", "scripts/gpu_check.sh", "--dry-run", "--out", str(tmp_path)], cwd=REPO_ROOT,
                          env=env, capture_output=True, text=True, timeout=540)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    results = json.loads((tmp_path / "results.json").read_text())
    parts = results["parts"]
    assert list(parts) == [p for p in gpu_check.PARTS if p not in gpu_check.EXTRA_PARTS]
    # bitsandbytes 4-bit stops at the GPU boundary with the recipe's own message, nothing else fails.
    for name in ("qlora", "qlora_no_ckpt", "gen_4bit"):
        assert parts[name]["status"] == "skipped" and "CUDA" in parts[name]["reason"]
    assert not [n for n, p in parts.items() if p["status"] == "failed"]
    for name in ("bf16_lora", "bf16_lora_no_ckpt", "bf16_padded", "bf16_padding_free"):
        part = parts[name]
        assert part["status"] == "ok" and part["steps_timed"] >= 1 and part["losses_finite"]
        assert part["tokens_per_s"] > 0 and 0 < part["supervised_tokens_per_s"] < part["tokens_per_s"]
        assert part["max_row_tokens"] <= gpu_check.DRY.sft_max_tokens
    assert parts["bf16_lora"]["batch"] == 1 and parts["bf16_lora"]["accumulation"] == 4  # the paper preset's shape
    assert parts["bf16_lora"]["gradient_checkpointing"] and not parts["bf16_lora_no_ckpt"]["gradient_checkpointing"]
    assert parts["bf16_padding_free"]["padding_free"] and not parts["bf16_padded"]["padding_free"]
    for name in ("gen_merged", "gen_static"):
        assert parts[name]["status"] == "ok" and parts[name]["merged"] and parts[name]["inputs"] == gpu_check.DRY.gen_inputs
        assert parts[name]["tokens_per_s"] > 0
    assert parts["gen_static"]["cache_implementation"] == "static"
    if parts["grpo"]["status"] == "ok":
        assert parts["grpo"]["generate_s"] > 0 and parts["grpo"]["generate_calls"] >= 1
    else:
        assert parts["grpo"]["status"] == "skipped" and parts["grpo"]["reason"]
    assert all(v["pass"] is None for v in results["verdicts"].values())  # a dry run judges nothing
    assert results["imported_but_absent_on_gpu"] == []  # wandb and MiniLM hidden, as on the GPU image
    section = (tmp_path / "section.md").read_text()
    assert "Dry run" in section and "| `bf16_lora` | ok |" in section
    assert "targets (H100/H200)" in proc.stdout and "anchors (published)" in proc.stdout


def _gpu_results(card: str, mfu: float) -> dict:
    results = {"mode": "gpu", "started": "2026-11-26 12:00 UTC", "elapsed_s": 400.0,
               "machine": {"device": card, "torch": "2.11"},
               "parts": {"qlora": {"status": "ok", "mfu": mfu, "train_peak_gpu_reserved_gb": 8.0, "steps_timed": 3,
                                   "tokens_per_s": 4000.0, "supervised_tokens_per_s": 1500.0, "batch": 1,
                                   "accumulation": 4, "mean_row_tokens": 4050.0, "losses_finite": True}}}
    results["verdicts"] = gpu_check.judge(results)
    return results


def test_write_docs_puts_each_card_in_the_gpu_block_and_replaces_a_rerun(tmp_path):
    docs = tmp_path / "benchmarks.md"
    docs.write_text(f"# B\n\n{gpu_check.GPU_BEGIN}\nNo GPU result yet: none lent.\n{gpu_check.GPU_END}\n\n## History\nkept\n")
    for card, mfu in (("NVIDIA H100 80GB HBM3", 0.30), ("NVIDIA H200", 0.41), ("NVIDIA H100 80GB HBM3", 0.38)):
        path = tmp_path / "results.json"
        path.write_text(json.dumps(_gpu_results(card, mfu)))
        gpu_check.write_docs(path, docs)
    text = docs.read_text()
    block = text.split(gpu_check.GPU_BEGIN)[1].split(gpu_check.GPU_END)[0]
    assert "No GPU result yet" not in block
    assert block.count("### NVIDIA H100 80GB HBM3") == 1 and block.count("### NVIDIA H200") == 1
    assert "38.0%" in block and "30.0%" not in block  # the rerun on the same card replaced the first
    assert text.endswith("## History\nkept\n")
