"""recipes/sft_paper.py end to end on CPU: fail-fast errors, a real 2-process (gloo) run that
saves and reloads its adapter, and kill -> --resume reaching the planned steps in the same order."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[2]
RECIPE = REPO_ROOT / "recipes" / "sft_paper.py"
ACCELERATE = Path(sys.executable).with_name("accelerate")

# Small and fast: 512-token chunks (the tiny preset's cached build), rows cut to 256 tokens.
SMALL = [
    "--preset", "tiny",
    "--data.max_tokens=512", "--data.max_train_rows=16", "--data.max_heldout_rows=2",
    "--train.max_length=256", "--train.per_device_train_batch_size=1",
    "--train.gradient_accumulation_steps=1", "--train.warmup_steps=0",
]


def env() -> dict[str, str]:
    out = dict(os.environ)
    out.update(
        ACCELERATE_USE_CPU="true",
        WANDB_MODE="offline", HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false", OMP_NUM_THREADS="1",
        PYTHONUNBUFFERED="1",
    )
    return out


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run(cmd: list[str], timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=REPO_ROOT, env=env(), capture_output=True, text=True, timeout=timeout)


def test_four_bit_without_cuda_fails_fast(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("checks the no-CUDA error")
    start = time.monotonic()
    proc = run([sys.executable, str(RECIPE), f"--runs_dir={tmp_path}"], timeout=120)  # paper preset: 4-bit
    assert proc.returncode != 0
    assert "4bit loading uses bitsandbytes, which needs a CUDA GPU" in proc.stderr
    assert time.monotonic() - start < 60
    assert not any(tmp_path.iterdir())  # nothing written, nothing loaded


@pytest.mark.parametrize(
    "bad, expected",
    [(["--lora.rank=4"], "unknown config key --lora.rank"), (["--train.max_steps=ten"], "bad value for --train.max_steps")],
)
def test_bad_override_fails_fast_in_one_line(tmp_path, bad, expected):
    proc = run([sys.executable, str(RECIPE), "--preset", "tiny", f"--runs_dir={tmp_path}", *bad], timeout=120)
    assert proc.returncode == 2
    assert expected in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr  # one line, not a list of every key
    assert not any(tmp_path.iterdir())


def test_two_process_cpu_run_trains_saves_and_reloads(tmp_path):
    # accelerate 1.15: `--cpu --num_processes 2` starts ONE process unless mpirun is set up; the
    # torchrun launcher (`--multi_gpu`) starts two, and the recipe's use_cpu (no CUDA) makes them
    # a MULTI_CPU group over gloo.
    cmd = [
        str(ACCELERATE), "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
        "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", str(free_port()),
        str(RECIPE), *SMALL, "--name=two-proc", f"--runs_dir={tmp_path}", "--train.max_steps=3",
        "--train.save_steps=3",
    ]
    proc = run(cmd)
    assert proc.returncode == 0, proc.stderr[-4000:]
    run_dir = tmp_path / "two-proc"
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["num_processes"] == 2 and metrics["global_step"] == 3
    assert metrics["distributed"] == "MULTI_CPU (gloo)"
    assert metrics["supervised_tokens_seen"] > 0 and metrics["supervised_tokens_per_s"] > 0
    assert set(metrics["heldout_loss"]) >= {"step0", "end"}
    config = json.loads((run_dir / "config.json").read_text())
    assert config["train"]["max_steps"] == 3 and config["base_model"].endswith("tiny-llama-2")
    for path in ("adapter/adapter_config.json", "adapter/adapter_model.safetensors", "tokenizer/tokenizer_config.json",
                 "README.md", "checkpoint-3/trainer_state.json"):
        assert (run_dir / path).exists(), path
    assert list((run_dir / "wandb").glob("offline-run-*")), "wandb logs offline under runs/<name>/wandb"
    # Privacy (README): what wandb would upload is config and metrics, never transcript text.
    from therapy_align.data.transcripts import load_annomi

    utterances = sorted({t.text.encode() for tr in load_annomi()[0] for t in tr.turns if len(t.text) > 80})[:500]
    for path in (p for p in (run_dir / "wandb").rglob("*") if p.is_file()):
        data = path.read_bytes()
        assert not [u for u in utterances if u in data], f"transcript text in {path}"

    import torch

    from therapy_align.training.models import load_model_for_inference

    model, tokenizer = load_model_for_inference(str(run_dir))
    assert type(model).__name__.startswith("Peft")
    ids = tokenizer("[INST] I feel low. [/INST]", return_tensors="pt").input_ids
    with torch.no_grad():
        out = model.generate(input_ids=ids, max_new_tokens=4, do_sample=False)
    assert out.shape[1] == ids.shape[1] + 4


def test_kill_then_resume_reaches_planned_steps_in_the_same_order(tmp_path):
    common = [sys.executable, str(RECIPE), *SMALL, f"--runs_dir={tmp_path}", "--train.max_steps=6",
              "--train.save_steps=2", "--run.heldout_eval=false", "--run.wandb=false"]
    reference = run([*common, "--name=reference"])
    assert reference.returncode == 0, reference.stderr[-4000:]
    expected = dict(json.loads((tmp_path / "reference" / "metrics.json").read_text())["train_losses"])

    run_dir = tmp_path / "killed"
    proc = subprocess.Popen([*common, "--name=killed"], cwd=REPO_ROOT, env=env(), start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 600
    try:
        while not (run_dir / "checkpoint-2" / "trainer_state.json").is_file():
            assert proc.poll() is None, f"run ended before its first checkpoint: {proc.stderr.read()[-3000:]}"
            assert time.monotonic() < deadline
            time.sleep(0.02)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the process group this test started
        proc.wait()
    finished = sorted(p.name for p in run_dir.glob("checkpoint-*"))
    assert not (run_dir / "metrics.json").exists(), f"the run finished before it was killed: {finished}"
    assert not (run_dir / "checkpoint-6").exists(), finished

    resumed = run([*common, "--name=killed", "--resume"])
    assert resumed.returncode == 0, resumed.stderr[-4000:]
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["global_step"] == 6 and metrics["resumed_from"].startswith("checkpoint-")
    start = int(metrics["resumed_from"].split("-")[1])
    assert 2 <= start < 6
    got = dict(metrics["train_losses"])  # steps <= start come from the checkpoint's trainer state
    assert sorted(got) == list(range(1, 7))
    # same batches, same weights -> same losses as the uninterrupted run
    assert [round(got[s], 4) for s in sorted(got)] == pytest.approx(
        [round(expected[s], 4) for s in sorted(expected)], abs=2e-4
    ), f"resumed from {metrics['resumed_from']}: {got} vs reference {expected}"
    assert (run_dir / "adapter" / "adapter_model.safetensors").is_file()


def test_existing_checkpoints_need_resume(tmp_path):
    (tmp_path / "taken" / "checkpoint-2").mkdir(parents=True)
    (tmp_path / "taken" / "checkpoint-2" / "trainer_state.json").write_text("{}")
    proc = run([sys.executable, str(RECIPE), *SMALL, f"--runs_dir={tmp_path}", "--name=taken"], timeout=120)
    assert proc.returncode != 0 and "--resume" in proc.stderr


def test_data_knobs_reach_the_built_data_and_the_saved_config(tmp_path):
    """`--data.opener_policy=context` (a dataset-build knob, reachable because the recipe's data
    section embeds the build config) shows in the run's saved config, its data summary and the
    token ids it trains on."""
    from tests.conftest import load_recipe_module
    from therapy_align.overrides import apply_overrides
    from therapy_align.training.sft_run import make_trainer

    recipe = load_recipe_module(RECIPE, "sft_paper_data_knobs")
    cfg = apply_overrides(recipe.variant(recipe.TINY, "annomi80"),
                          ["--data.opener_policy=context", f"--runs_dir={tmp_path}", "--run.wandb=false"])
    assert cfg.data.opener_policy == "context"
    run_dir = tmp_path / cfg.name
    trainer, tokenizer = make_trainer(cfg, run_dir)
    assert json.loads((run_dir / "config.json").read_text())["data"]["opener_policy"] == "context"
    summary = json.loads((run_dir / "data_summary.json").read_text())
    assert summary["opener_policy"] == summary["config"]["opener_policy"] == "context"
    assert summary["therapist_first_transcripts"] > 0
    texts = [tokenizer.decode(row["input_ids"]) for row in trainer.train_dataset]
    assert sum("(The counsellor opened the session:" in text for text in texts) >= summary["therapist_first_transcripts"] // 2
