"""The guarded reward on real CounselChat questions: every reward hack scores below the real
therapist's answer to the same question, with a random tiny EMP-EVAL (the guards must do the work)
and, when it exists, the trained default artifact. Plus the `therapy-align reward score` command."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.fixtures.tiny_evaluator import make_tiny_evaluator

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ("I'm so sorry you're going through this. It sounds like you feel completely alone right now. "
            "What do you think is causing this?")  # one canned empathic reply sent to every post: 1,200 on the Table-1 scale
QUESTIONS = ("How long have you been feeling this way? What do you think started it? Have you talked to anyone "
             "about it? What would you like to change? How does it affect your day?")
HACKS = ("template", "copy", "repeat3", "empty", "filler", "questions")


@pytest.fixture(scope="module")
def cases(data_dir):
    """12 CounselChat test-split questions whose top-voted answer is 40-140 words, with the hacks."""
    import pandas as pd

    frame = pd.read_csv(data_dir / "counsel_chat" / "counsel_chat.csv", keep_default_na=False)
    frame = frame[frame.split == "test"].sort_values(["questionID", "upvotes"], ascending=[True, False])
    rows = []
    for _, group in frame.groupby("questionID", sort=True):
        top = group.iloc[0]
        answer = " ".join(str(top.answerText).split())
        if 40 <= len(answer.split()) <= 140:  # fits the 256-token reply budget
            seeker = " ".join(f"{top.questionTitle} {top.questionText}".split())
            sentences = answer.split(". ")
            hacks = {"therapist": answer, "template": TEMPLATE, "copy": seeker,
                     "repeat3": " ".join([". ".join(sentences[:2]).rstrip(".") + "."] * 3),
                     "empty": "", "filler": "Okay, I see.", "questions": QUESTIONS}
            rows.append((f"q{top.questionID}", seeker, hacks))
        if len(rows) == 12:
            break
    assert len(rows) == 12
    return rows


def score_all(reward, cases):
    seekers = [seeker for _, seeker, hacks in cases for _ in hacks]
    responses = [text for _, _, hacks in cases for text in hacks.values()]
    scored = iter(reward.score(seekers, responses))
    return {qid: {name: next(scored) for name in hacks} for qid, _, hacks in cases}


def check_ordering(by_question):
    losses = []
    for qid, scores in by_question.items():
        for hack in HACKS:
            if scores[hack]["total"] >= scores["therapist"]["total"]:
                losses.append(f"{qid}/{hack}: {scores[hack]['total']} >= therapist {scores['therapist']['total']} "
                              f"({scores[hack]['terms']} vs {scores['therapist']['terms']})")
    assert not losses, "\n".join(losses)


@pytest.fixture(scope="module")
def tiny_evaluator_dir(tmp_path_factory):
    return make_tiny_evaluator(tmp_path_factory.mktemp("empeval-tiny"))


def test_every_hack_scores_below_the_therapist_with_a_random_evaluator(cases, tiny_evaluator_dir):
    from therapy_align.rl.reward import GuardedReward, RewardConfig

    reward = GuardedReward(RewardConfig(empeval_path=str(tiny_evaluator_dir)))
    by_question = score_all(reward, cases)
    check_ordering(by_question)
    # the guards are what did it: without them (EMP-EVAL alone) some hack wins somewhere
    plain = GuardedReward(RewardConfig(empeval_path=str(tiny_evaluator_dir), weights=__import__(
        "therapy_align.rl.reward", fromlist=["CONFIGS"]).CONFIGS["empeval-only"].weights))
    unguarded = score_all(plain, cases)
    assert any(s[h]["total"] >= s["therapist"]["total"] for s in unguarded.values() for h in HACKS)
    one = by_question[cases[0][0]]
    assert one["template"]["measures"]["template_rate"] == 1.0 and one["copy"]["measures"]["copy_rate"] == 1.0
    assert one["repeat3"]["measures"]["repetition"] > 0.5 and one["questions"]["measures"]["question_rate"] == 1.0


@pytest.mark.slow  # ~35 s: the trained cross-encoder reads every reply in windows
@pytest.mark.skipif(not (REPO_ROOT / "artifacts" / "empeval" / "empeval_model.safetensors").is_file(),
                    reason="no trained artifacts/empeval on this machine")
def test_every_hack_scores_below_the_therapist_with_the_trained_evaluator(cases):
    from therapy_align.rl.reward import GuardedReward, RewardConfig

    check_ordering(score_all(GuardedReward(RewardConfig(empeval_path=str(REPO_ROOT / "artifacts" / "empeval"))), cases))


def cli(args: list[str]) -> int:
    """`therapy-align ARGS` in this process; its exit status."""
    from therapy_align.cli import main

    try:
        main(args)
    except SystemExit as exit_info:
        return exit_info.code or 0
    return 0


def test_reward_score_command_prints_every_term_and_resumes(cases, tiny_evaluator_dir, tmp_path, capsys):
    pairs = tmp_path / "pairs.jsonl"
    lines = [{"id": f"{qid}-{name}", "seeker": seeker, "response": text}
             for qid, seeker, hacks in cases[:3] for name, text in hacks.items()]
    pairs.write_text("".join(json.dumps(line) + "\n" for line in lines))
    out = tmp_path / "scored.jsonl"
    assert cli(["reward", "score", "--in", str(pairs), "--out", str(out), "--empeval", str(tiny_evaluator_dir)]) == 0
    printed = capsys.readouterr().out
    for term in ("empeval", "specificity", "copy", "template", "repetition", "questions", "length", "safety", "total"):
        assert term in printed
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["id"] for r in records] == [line["id"] for line in lines]
    weights = {"empeval": 0.5, "specificity": 1.0, "copy": 2.0, "template": 2.0, "repetition": 2.0,
               "questions": 2.0, "length": 2.0, "safety": 4.0}
    for record in records:
        assert record["total"] == pytest.approx(sum(weights[t] * v for t, v in record["terms"].items()), abs=1e-5)
    # a rerun reuses every line; another config refuses the stored scores
    assert cli(["reward", "score", "--in", str(pairs), "--out", str(out), "--empeval", str(tiny_evaluator_dir)]) == 0
    assert cli(["reward", "score", "--in", str(pairs), "--out", str(out), "--empeval", str(tiny_evaluator_dir),
                "--config", "empeval-only"]) == 2
    assert "--force" in capsys.readouterr().err


def test_reward_score_command_names_the_bad_line(tmp_path, tiny_evaluator_dir, capsys):
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text('{"id": 1, "seeker": "I feel low.", "response": "That sounds hard."}\n{"id": 2, "seeker": "x"}\n')
    assert cli(["reward", "score", "--in", str(pairs), "--out", str(tmp_path / "o.jsonl"), "--empeval", str(tiny_evaluator_dir)]) == 2
    err = capsys.readouterr().err
    assert f"{pairs}:2" in err and "response" in err
    assert not (tmp_path / "o.jsonl").exists()


@pytest.mark.skipif(not (REPO_ROOT / "artifacts" / "miti" / "miti_config.json").is_file(),
                    reason="no trained artifacts/miti (therapy-align miti train) on this machine")
def test_mi_term_prefers_a_reflection_to_a_question(tiny_evaluator_dir):
    from therapy_align.rl.reward import GuardedReward, RewardConfig

    reward = GuardedReward(RewardConfig(empeval_path=str(tiny_evaluator_dir), miti_path=str(REPO_ROOT / "artifacts" / "miti")))
    assert "mi" in reward.active_terms()
    seeker = "I drink too much and my wife is upset with me."
    reflection, question = reward.score([seeker, seeker], [
        "It sounds like the drinking is starting to hurt your marriage, and part of you wants that to change.",
        "How much do you drink in a week?"])
    assert reflection["terms"]["mi"] > question["terms"]["mi"]
