"""Per-step curves of an RL run (PNG, matplotlib): reward terms, held-out reward vs the independent
judge, KL to the SFT reference, and reply length. Reads ``metrics.json`` (the trainer's log) and
``judge.jsonl`` of ``runs/<name>/``; iterated-DPO rounds are read from ``round-*/checkpoint-*``
logs when the final log holds only the last round."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from therapy_align.rl.judging import read_rows


def step_log(run_dir: Path) -> list[dict[str, Any]]:
    """The trainer's per-step log rows; for DPO runs, every round's, with steps made cumulative."""
    metrics = json.loads((run_dir / "metrics.json").read_text())
    rounds = sorted(run_dir.glob("round-*"), key=lambda p: int(p.name.split("-")[1]))
    if not rounds:
        return [row for row in metrics["log_history"] if "loss" in row]
    rows, offset = [], 0
    for round_dir in rounds:
        states = sorted(round_dir.glob("checkpoint-*/trainer_state.json"), key=lambda p: int(p.parent.name.split("-")[1]))
        if not states:
            continue
        state = json.loads(states[-1].read_text())
        rows += [{**row, "step": row["step"] + offset, "round": round_dir.name} for row in state["log_history"] if "loss" in row]
        offset += int(state.get("max_steps") or state["global_step"])
    return rows


def plot_run(run_dir: str | Path, out: str | Path, *, title: str | None = None) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    run_dir, out = Path(run_dir), Path(out)
    log, judged = step_log(run_dir), read_rows(run_dir / "judge.jsonl")
    fig, axes = plt.subplots(2, 2, figsize=(11, 7))
    ax = axes[0][0]
    terms = sorted({key.split("/")[1] for row in log for key in row if key.startswith("rewards/") and key.endswith("/mean")})
    for term in terms:
        ax.plot([r["step"] for r in log], [r.get(f"rewards/{term}/mean") for r in log], label=term)
    for key in ("rewards/chosen", "rewards/rejected", "rewards/margins"):  # DPO's implicit rewards
        if any(key in r for r in log):
            ax.plot([r["step"] for r in log if key in r], [r[key] for r in log if key in r], label=key.split("/")[1])
    ax.set_title("training reward terms (per step)")
    ax.legend(fontsize=7, ncol=2)
    ax = axes[0][1]
    ax.plot([r["step"] for r in judged], [r["reward_total"] for r in judged], "o-", label="reward total (held-out)")
    if any(r.get("judge_final") is not None for r in judged):
        ax.plot([r["step"] for r in judged if r.get("judge_final") is not None],
                [r["judge_final"] for r in judged if r.get("judge_final") is not None], "s-", label="judge final (held-out)")
    ax.plot([r["step"] for r in judged], [r["reward_empeval"] for r in judged], "^--", label="reward EMP-EVAL term")
    ax.set_title("held-out judging")
    ax.legend(fontsize=7)
    ax = axes[1][0]
    kl = [(r["step"], r["kl"]) for r in log if "kl" in r]
    if kl:
        ax.plot(*zip(*kl), label="KL to SFT (GRPO)")
    for key in ("logps/chosen", "logps/rejected"):
        if any(key in r for r in log):
            ax.plot([r["step"] for r in log if key in r], [r[key] for r in log if key in r], label=key)
    ax.set_title("KL / log-probabilities")
    ax.legend(fontsize=7)
    ax = axes[1][1]
    if any("completions/mean_length" in r for r in log):
        ax.plot([r["step"] for r in log if "completions/mean_length" in r],
                [r["completions/mean_length"] for r in log if "completions/mean_length" in r], label="training replies")
    ax.plot([r["step"] for r in judged], [r["len_tokens"] for r in judged], "o-", label="held-out replies")
    ax.set_title("reply length (tokens)")
    ax.legend(fontsize=7)
    for a in axes.flat:
        a.set_xlabel("step")
    fig.suptitle(title or run_dir.name)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=90)
    plt.close(fig)
    return out


# What a policy could learn to game, per step, side by side across runs (e.g. guarded against the
# unguarded paper reward): the guard measures of the training replies, then the held-out judge.
COMPARED = (("guards/template_rate", "template rate (training replies)"),
            ("guards/question_rate", "question rate (training replies)"),
            ("guards/len_tokens", "length, tokens (training replies)"),
            ("guards/copy_rate", "copy rate (training replies)"),
            ("guards/repetition", "repetition (training replies)"),
            ("rewards/empeval/mean", "EMP-EVAL term (training replies)"))
HELD_OUT = (("judge_final", "judge final (held-out)"), ("reward_total", "the run's own reward total (held-out)"),
            ("question_rate", "question rate (held-out)"))


def plot_compare(runs: dict[str, str | Path], out: str | Path, *, title: str | None = None) -> Path:
    """One figure, one line per run: the guard measures of each step's training replies, and the
    held-out judge, the run's own reward total and question rate at each judging step."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out)
    panels = [*COMPARED, *HELD_OUT]
    fig, axes = plt.subplots(3, 3, figsize=(13, 9))
    for (key, label), ax in zip(panels, axes.flat, strict=True):
        for name, run_dir in runs.items():
            run_dir = Path(run_dir)
            if key.startswith(("guards/", "rewards/")):
                rows = [r for r in step_log(run_dir) if key in r]
            else:
                rows = [r for r in read_rows(run_dir / "judge.jsonl") if r.get(key) is not None]
            ax.plot([r["step"] for r in rows], [r[key] for r in rows], "o-" if key in dict(HELD_OUT) else "-",
                    label=name, markersize=3)
        ax.set_title(label, fontsize=9)
        ax.set_xlabel("step")
    axes.flat[0].legend(fontsize=7)
    fig.suptitle(title or " vs ".join(runs))
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=90)
    plt.close(fig)
    return out
