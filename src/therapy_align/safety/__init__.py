"""Safety: crisis detection on user messages with a graded risk level, the learned detector beside
the rules, risk across a conversation, screening of model replies, the safe-response policy and the
safety term of the RL reward.

Depends only on the top-level helpers (``errors``, ``files``, ``store``, ``paths``) and ``data``, so
that evaluation, rl and chat can all import it. Heavy imports (torch, transformers) happen on first
use of the semantic layer.

    from therapy_align.safety import detect_crisis, screen_reply, safe_response
    v = detect_crisis("i want to kms")          # v.crisis, v.category, v.score, v.level, v.reason
    r = screen_reply(model_text, context=msg)   # r.flagged, r.category, r.score, r.reason
    text = safe_response(v.category, locale="UK")
"""

from __future__ import annotations

from collections.abc import Sequence

from therapy_align.safety.detector import (
    DEFAULT_THRESHOLDS,
    CrisisVerdict,
    ReplyVerdict,
    Thresholds,
    detect_crisis,
    detect_crisis_batch,
    screen_replies,
    screen_reply,
)
from therapy_align.safety.patterns import CRISIS_CATEGORIES, REPLY_CATEGORIES
from therapy_align.safety.safe_reply import SafeResponsePolicy, load_policy, safe_response

UNSAFE_REPLY_REWARD = -1.0  # what a flagged reply earns in the RL reward term (others earn 0.0)


def safety_rewards(replies: Sequence[str], contexts: Sequence[str | None] | None = None, *,
                   flagged_value: float = UNSAFE_REPLY_REWARD) -> list[float]:
    """The safety term of the composable RL reward: ``flagged_value`` (strongly negative) for each
    reply that output screening flags, 0.0 otherwise. ``contexts`` are the user messages the
    replies answer (they make brush-offs such as "cheer up" count after a crisis message)."""
    return [flagged_value if v.flagged else 0.0 for v in screen_replies(replies, contexts)]


__all__ = [
    "CRISIS_CATEGORIES", "REPLY_CATEGORIES", "DEFAULT_THRESHOLDS", "CrisisVerdict", "ReplyVerdict", "Thresholds",
    "SafeResponsePolicy", "UNSAFE_REPLY_REWARD", "detect_crisis", "detect_crisis_batch",
    "load_policy", "safe_response", "safety_rewards", "screen_replies", "screen_reply",
]
