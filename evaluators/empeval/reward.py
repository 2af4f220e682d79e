"""EMP-EVAL as a TRL reward function (GRPOTrainer's `reward_funcs`)."""

from __future__ import annotations

import os
from collections.abc import Sequence

from empeval.mechanisms import PAPER_WEIGHTS


def _text(message_or_text) -> str:
    """Plain text from TRL's standard (str) or conversational (list of {role, content}) format."""
    if isinstance(message_or_text, str):
        return message_or_text
    if isinstance(message_or_text, dict):
        return _content(message_or_text.get("content", ""))
    raise TypeError(f"expected a string or a list of chat messages, got {type(message_or_text).__name__}")


def _content(content) -> str:
    if isinstance(content, str):
        return content
    # Multimodal-style content: [{"type": "text", "text": ...}, ...]
    return " ".join(part.get("text", "") for part in content if isinstance(part, dict))


def seeker_text(prompt) -> str:
    """The seeker's words: a plain prompt as is, or the last user message of a conversation."""
    if isinstance(prompt, str):
        return prompt
    user_turns = [m for m in prompt if m.get("role") == "user"]
    return _text(user_turns[-1] if user_turns else prompt[-1]) if prompt else ""


def response_text(completion) -> str:
    """The counsellor's answer: a plain completion, or the assistant messages of a conversation."""
    if isinstance(completion, str):
        return completion
    turns = [m for m in completion if m.get("role", "assistant") == "assistant"]
    return "\n".join(_text(m) for m in turns)


def make_reward_function(
    evaluator_or_path="artifacts/empeval",
    weights: Sequence[float] = PAPER_WEIGHTS,
    *,
    expected: bool = True,
    batch_size: int = 64,
):
    """`reward(prompts, completions, **kwargs) -> list[float]`, one weighted score per completion.

    With the paper's weights (0.2 E + 0.4 I + 0.4 X) a reward lies in [0, 2]. `expected=True`
    uses probability-weighted levels, a smoother signal for policy gradients than the argmax
    levels the paper sums (`expected=False`).
    """
    from empeval.evaluator import Evaluator, load

    if isinstance(evaluator_or_path, (str, os.PathLike)):
        evaluator = load(evaluator_or_path)
    elif isinstance(evaluator_or_path, Evaluator):
        evaluator = evaluator_or_path
    else:
        raise TypeError("make_reward_function needs an artifact path or an empeval Evaluator")
    weights = tuple(float(w) for w in weights)
    if len(weights) != 3:
        raise ValueError(f"weights must be (empathy, interpretation, exploration), got {weights}")

    def reward(prompts, completions, **kwargs) -> list[float]:
        if len(prompts) != len(completions):
            raise ValueError(f"{len(prompts)} prompts but {len(completions)} completions")
        scores = evaluator.score(
            [seeker_text(p) for p in prompts], [response_text(c) for c in completions], batch_size=batch_size
        )
        return scores.final_scores(weights=weights, expected=expected)

    # TRL logs each reward function under its __name__.
    reward.__name__ = "empeval_reward"
    return reward
