"""EMP-EVAL: EPITOME empathy-mechanism classifiers (ER, IP, EX).

    import empeval
    evaluator = empeval.load("artifacts/empeval")
    scores = evaluator.score(seekers, responses)          # levels + probabilities per mechanism
    empeval.final_score(1090, 20, 16)                      # 232.4, Table 1's formula
    reward = empeval.make_reward_function("artifacts/empeval")  # for TRL GRPOTrainer

Heavy modules (torch, transformers) load on first use so that `import empeval` stays cheap.
"""

from __future__ import annotations

from empeval.mechanisms import MECHANISMS, PAPER_WEIGHTS, final_score

DEFAULT_ARTIFACT = "artifacts/empeval"  # where training writes and every scorer looks, relative to the working directory

__all__ = ["MECHANISMS", "PAPER_WEIGHTS", "Evaluator", "EmpathyScores", "final_score", "load", "make_reward_function"]


def load(path="artifacts/empeval", batch_size: int = 64, int8: bool = False):
    """The trained evaluator in `path`; see `empeval.evaluator.Evaluator.score`."""
    from empeval.evaluator import load as load_evaluator

    return load_evaluator(path, batch_size=batch_size, int8=int8)


def make_reward_function(evaluator_or_path="artifacts/empeval", weights=PAPER_WEIGHTS, **kwargs):
    from empeval.reward import make_reward_function as make

    return make(evaluator_or_path, weights, **kwargs)


make_reward_function.__doc__ = "TRL reward function; see empeval.reward.make_reward_function."


def __getattr__(name: str):
    if name in ("Evaluator", "EmpathyScores"):
        from empeval import evaluator

        return getattr(evaluator, name)
    raise AttributeError(f"module 'empeval' has no attribute {name!r}")
