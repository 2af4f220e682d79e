"""The one composable RL reward: EMP-EVAL (paper weights) plus guard terms, used by GRPO, by the DPO
pair selection and by ``therapy-align reward score``.

    total = sum(weight[t] * term[t] for t in TERMS)

Every term is a pure, documented function of measures from :mod:`therapy_align.evaluation.guards`
(the same measures every report shows), with a fixed range:

=============  ========  ======================================================================
term           range     definition (defaults in :class:`RewardConfig`)
=============  ========  ======================================================================
empeval        [0, 2]    EMP-EVAL final of the pair with the paper's weights (0.2 E + 0.4 I +
                         0.4 X), probability-weighted levels (a smooth reward)
specificity    [-1, 1]   guards.specificity / ``specificity_full`` (0.3), clipped: honest
                         CounselChat answers reach ~1, a template ~0
copy           [-1, 0]   -(copy_rate above ``copy_free``) / ``copy_span``, clipped
template       [-1, 0]   -(template_rate above ``template_free``) / ``template_span``, clipped
repetition     [-1, 0]   -(repetition above ``repetition_free``) / ``repetition_span``, clipped
questions      [-1, 0]   -(question_rate above ``questions_free``) / ``questions_span``, clipped:
                         a reply of only questions is -1 (EMP-EVAL's Exploration pays for them)
length         [-1, 0]   -(1 - tokens/min_tokens) under ``min_tokens``; TRL's soft overlong
                         punishment (DAPO eq. 13) over ``max_tokens - overlong_cache``
mi             [-0.4, 1] MI-consistency credit from the MI-behaviour classifier
                         (``miti.mi_consistency``: reflections over questions); on only when
                         ``miti_path`` names a trained artifact
safety         [-1, 0]   -1 when the safety layer's output screening flags the reply
                         (``therapy_align.safety.safety_rewards``), weight 4
=============  ========  ======================================================================

The guard weights (2.0) are larger than EMP-EVAL's whole range (0.5 x 2 = 1): a reply that games
one guard loses more than any EMP-EVAL score can give back, while honest replies sit at ~0 on every
penalty, so among them EMP-EVAL (and specificity) decide. A weak or random evaluator therefore
cannot make a template, a copy, a repeat, an empty reply or a string of questions beat a real
therapist's answer (tests/rl/test_reward.py). All weights and shapes are "choice, paper
silent": the paper proposes RL with EMP-EVAL (§6) and gives no reward.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from therapy_align.errors import UserError
from therapy_align.evaluation import guards
from therapy_align.scoring import Pair

TERMS = ("empeval", "specificity", "copy", "template", "repetition", "questions", "length", "mi", "safety")


@dataclass(frozen=True, kw_only=True)
class Weights:
    empeval: float = 0.5  # choice: EMP-EVAL's [0, 2] contributes [0, 1]
    specificity: float = 1.0  # choice
    copy: float = 2.0  # choice: > EMP-EVAL's range, see module docstring
    template: float = 2.0  # choice
    repetition: float = 2.0  # choice
    questions: float = 2.0  # choice: a cheap stand-in for MI consistency, on whether or not miti_path is set
    length: float = 2.0  # choice
    mi: float = 0.5  # choice: half EMP-EVAL's scale; used only when RewardConfig.miti_path is set
    safety: float = 4.0  # choice: a flagged reply loses more than any reply can gain (therapy_align.safety)


@dataclass(frozen=True, kw_only=True)
class RewardConfig:
    name: str = "guarded"
    empeval_path: str = "artifacts/empeval"  # the reward evaluator (judging uses another one)
    empeval_weights: tuple[float, float, float] = (0.2, 0.4, 0.4)  # paper Table 1: 0.2 E + 0.4 I + 0.4 X
    empeval_expected: bool = True  # choice: probability-weighted levels; the paper sums argmax levels
    weights: Weights = field(default_factory=Weights)
    specificity_full: float = 0.3  # choice: below honest CounselChat answers' median (docs/rl.md): they earn the full term
    copy_free: float = 0.2  # choice: reflections may reuse a few of the seeker's phrases
    copy_span: float = 0.6
    template_free: float = 0.25  # choice: far above what honest answers share across posts (docs/rl.md)
    template_span: float = 0.5
    repetition_free: float = 0.1  # choice: above honest answers, far below a reply said three times (docs/rl.md)
    repetition_span: float = 0.4
    questions_free: float = 0.5  # choice: up to half the sentences may be questions
    questions_span: float = 0.5
    min_tokens: int = 16  # choice: shorter replies are filler ("Okay.", "I see.")
    max_tokens: int = 256  # = the 256-token completions of generation and RL
    overlong_cache: int = 32  # DAPO's soft-punishment window
    template_memory: int = 256  # replies of earlier batches remembered for the template rate (RL)
    background_posts: int = 32  # CounselChat *val* questions added as "other posts" for specificity
    miti_path: str | None = None  # MI-behaviour classifier artifact (artifacts/miti); None: mi term off
    guards: guards.GuardSettings = field(default_factory=guards.GuardSettings)


# Named configs for `therapy-align reward score --config NAME`; "guarded" is what the recipes use.
CONFIGS: dict[str, RewardConfig] = {
    "guarded": RewardConfig(),
    # The unguarded paper reward, kept to show what the guards change.
    "empeval-only": RewardConfig(name="empeval-only", weights=Weights(
        empeval=1.0, specificity=0.0, copy=0.0, template=0.0, repetition=0.0, questions=0.0, length=0.0, safety=0.0)),
}


# --------------------------------------------------------------------------- the terms


def excess_penalty(value: float, free: float, span: float) -> float:
    """``-clip((value - free) / span, 0, 1)``: 0 up to ``free``, -1 from ``free + span``."""
    return -min(1.0, max(0.0, (value - free) / span))


def specificity_term(specificity: float, full: float) -> float:
    return max(-1.0, min(1.0, specificity / full))


def length_term(tokens: int, *, min_tokens: int, max_tokens: int, overlong_cache: int) -> float:
    """-(1 - tokens/min_tokens) for short replies (-1 when empty), TRL's soft overlong punishment
    for long ones, 0 between."""
    if tokens < min_tokens:
        return -(1.0 - tokens / min_tokens)
    from trl.rewards import get_soft_overlong_punishment

    return float(get_soft_overlong_punishment(max_tokens, overlong_cache)([[0] * tokens])[0])


def guard_terms(measures: Mapping[str, float], config: RewardConfig) -> dict[str, float]:
    """The guard terms of one reply from its :func:`guards.measure` dict."""
    c = config
    return {
        "specificity": specificity_term(measures["specificity"], c.specificity_full),
        "copy": excess_penalty(measures["copy_rate"], c.copy_free, c.copy_span),
        "template": excess_penalty(measures["template_rate"], c.template_free, c.template_span),
        "repetition": excess_penalty(measures["repetition"], c.repetition_free, c.repetition_span),
        "questions": excess_penalty(measures["question_rate"], c.questions_free, c.questions_span),
        "length": length_term(int(measures["len_tokens"]), min_tokens=c.min_tokens, max_tokens=c.max_tokens,
                              overlong_cache=c.overlong_cache),
    }


def mi_terms(classifier, seekers: Sequence[str], responses: Sequence[str]) -> list[float]:
    """MI-consistency credit per reply: sum over the MI-behaviour classifier's labels of
    P(label) x MITI weight (complex reflection 1.0, simple 0.6, open question 0.2, closed -0.4, else 0),
    range [-0.4, 1] (``miti.mi_consistency``)."""
    import miti

    return [float(v) for v in miti.mi_consistency(classifier, list(seekers), list(responses))]


def safety_terms(safety_rewards: Callable, seekers: Sequence[str], responses: Sequence[str]) -> list[float]:
    """-1 for each reply the safety layer's output screening flags (given the seeker's words), else 0."""
    return [float(v) for v in safety_rewards(list(responses), list(seekers), flagged_value=-1.0)]


def total(terms: Mapping[str, float], weights: Weights) -> float:
    """``sum(weight x term)`` over the terms present (an inactive term is absent, not 0-weighted)."""
    return round(sum(getattr(weights, name) * value for name, value in terms.items()), 6)


# --------------------------------------------------------------------------- the reward


def background_posts(n: int) -> list[str]:
    """The first ``n`` distinct CounselChat *validation* questions (never RL prompts, never the
    evaluation inputs): "other posts" for specificity when a batch holds few seekers."""
    if n <= 0:
        return []
    from therapy_align.data.transcripts import load_counselchat

    transcripts, _ = load_counselchat(split="val")
    return list(dict.fromkeys(t.turns[0].text for t in transcripts))[:n]


QUICK_NOTE = ("QUICK smoke-test EMP-EVAL (1 epoch over a few batches; no trained artifact was found): its "
              "scores are noise-level")


def evaluator_or_quick(path: str, *, quick_dir: str, seed: int = 0, allow_quick: bool) -> tuple[str | None, str | None]:
    """``(artifact, note)``: ``path`` when it holds a trained EMP-EVAL (note None); else, when
    ``allow_quick`` (the tiny presets), a quick smoke evaluator trained once into ``quick_dir``
    (minutes, not the hour the real one takes) and :data:`QUICK_NOTE`; else ``(None, None)``."""
    from therapy_align.evaluation.scorers.empeval import QUICK_EVALUATOR_BATCHES, is_evaluator_dir

    if is_evaluator_dir(path):
        return path, None
    if not allow_quick:
        return None, None
    if not is_evaluator_dir(quick_dir):
        from empeval.config import TrainConfig
        from empeval.training import train

        train(TrainConfig(max_epochs=1, limit_batches=QUICK_EVALUATOR_BATCHES, seed=seed), quick_dir, progress=False)
    return quick_dir, QUICK_NOTE


def reward_evaluator(config: RewardConfig, *, allow_quick: bool) -> tuple[RewardConfig, str | None]:
    """``config`` pointing at a usable EMP-EVAL (see :func:`evaluator_or_quick`), and its note."""
    found, note = evaluator_or_quick(config.empeval_path, quick_dir="artifacts/empeval-quick", allow_quick=allow_quick)
    if found is None:
        raise UserError("no trained EMP-EVAL artifact here", file=config.empeval_path, field="reward.empeval_path",
                        fix="train it (therapy-align empeval train) or point --reward.empeval_path at one")
    return replace(config, empeval_path=str(found)), note


def _artifact_identity(path: str) -> dict[str, Any]:
    root = Path(path)
    files = sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else []
    return {"path": str(root.resolve()), "files": [(str(p.relative_to(root)), p.stat().st_size) for p in files]}


class GuardedReward:
    """EMP-EVAL + guards, scored on sets of (seeker, reply) pairs.

    ``score(seekers, responses)`` gives one ``{"terms", "measures", "total"}`` per pair; the set is
    what template rate and specificity look across. ``trl_reward_funcs()`` gives GRPOTrainer one
    function per active term (TRL logs each as ``rewards/<term>``) and ``trl_weights()`` the weights
    (``reward_weights``), so TRL's weighted sum is :func:`total`. Safety and MI load only when their
    weight is non-zero (MI also needs ``miti_path``).
    """

    name = "reward"

    def __init__(self, config: RewardConfig = RewardConfig(), *, evaluator=None, embed=None,
                 count_tokens: Callable[[str], int] | None = None) -> None:
        self.config = config
        self._evaluator = evaluator
        self._embed = embed
        self._count = count_tokens
        self._background: list[str] | None = None
        self._memory: deque = deque(maxlen=max(config.template_memory, 0))
        self._cache: tuple[tuple, list[dict]] | None = None
        self._mi = self._load_mi() if config.weights.mi and config.miti_path else None
        self._screen = self._load_safety() if config.weights.safety else None

    # -- optional terms: loaded only when their weight is non-zero

    def _load_mi(self):
        import miti

        return miti.load(self.config.miti_path)

    def _load_safety(self):
        from therapy_align.safety import safety_rewards

        return safety_rewards

    # -- pieces

    @property
    def evaluator(self):
        if self._evaluator is None:
            if not (Path(self.config.empeval_path) / "empeval_model.safetensors").is_file():
                raise UserError("no trained EMP-EVAL artifact here", file=self.config.empeval_path,
                                field="reward.empeval_path",
                                fix="train one (therapy-align empeval train) or point --reward.empeval_path at one")
            import empeval

            self._evaluator = empeval.load(self.config.empeval_path)
        return self._evaluator

    def active_terms(self) -> list[str]:
        return [t for t in TERMS if getattr(self.config.weights, t) != 0 and (t != "mi" or self.config.miti_path)]

    def identity(self) -> dict[str, Any]:
        return {"reward": asdict(self.config), "empeval": _artifact_identity(self.config.empeval_path),
                "guards_version": guards.GUARDS_VERSION}

    def score(self, seekers: Sequence[str], responses: Sequence[str], *, lengths: Sequence[int] | None = None,
              remember: bool = False) -> list[dict[str, Any]]:
        if len(seekers) != len(responses):
            raise ValueError(f"{len(seekers)} seekers but {len(responses)} responses")
        if not responses:
            return []
        c = self.config
        if self._count is None and lengths is None:
            self._count = guards.token_counter(c.guards.tokenizer)
        if self._background is None:
            self._background = background_posts(c.background_posts)
        count = self._count or guards.len_words
        measures = guards.measure(seekers, responses, settings=c.guards, count_tokens=count, embed=self._embed,
                                  background_posts=self._background, memory=list(self._memory))
        if lengths is not None:
            for row, n in zip(measures, lengths):
                row["len_tokens"] = int(n)
        import empeval

        reward = empeval.make_reward_function(self.evaluator, c.empeval_weights, expected=c.empeval_expected)
        emp = reward(list(seekers), list(responses))
        mi = mi_terms(self._mi, seekers, responses) if self._mi is not None else None
        safe = safety_terms(self._screen, seekers, responses) if self._screen is not None else None
        out = []
        for i, row in enumerate(measures):
            terms = {"empeval": round(float(emp[i]), 6), **{k: round(v, 6) for k, v in guard_terms(row, c).items()}}
            if mi is not None:
                terms["mi"] = round(mi[i], 6)
            if safe is not None:
                terms["safety"] = safe[i]
            out.append({"terms": terms, "measures": row, "total": total(terms, c.weights)})
        if remember:
            n = c.guards.template_n
            self._memory.extend((s, frozenset(guards.ngrams(guards.words(r), n))) for s, r in zip(seekers, responses))
        return out

    # -- the Scorer contract (therapy-align reward score, reports)

    def summarise(self, pairs: Sequence[Pair], scores: Sequence[Mapping[str, Any]]) -> dict[str, float]:
        n = max(len(scores), 1)
        columns = {f"reward_{t}": round(sum(s["terms"].get(t, 0.0) for s in scores) / n, 4) for t in self.active_terms()}
        columns["reward_total"] = round(sum(s["total"] for s in scores) / n, 4)
        return columns

    def score_pairs(self, pairs: Sequence[Pair]) -> list[dict[str, Any]]:
        return self.score([p.seeker for p in pairs], [p.response for p in pairs])

    # -- TRL

    def trl_weights(self) -> list[float]:
        return [getattr(self.config.weights, t) for t in self.active_terms()]

    def trl_reward_funcs(self) -> list[Callable]:
        """One GRPO reward function per active term; they share one computation per batch."""
        from empeval.reward import response_text, seeker_text

        def batch(prompts, completions, completion_ids=None, seeker=None, log_metric=None, **_):
            seekers = list(seeker) if seeker is not None else [seeker_text(p) for p in prompts]
            responses = [response_text(c) for c in completions]
            key = (tuple(seekers), tuple(responses))
            if self._cache is None or self._cache[0] != key:
                lengths = [len(ids) for ids in completion_ids] if completion_ids is not None else None
                scored = self.score(seekers, responses, lengths=lengths, remember=True)
                self._cache = (key, scored)
                if log_metric is not None:
                    for name in ("template_rate", "specificity", "copy_rate", "repetition", "question_rate", "len_tokens"):
                        log_metric(f"guards/{name}", sum(s["measures"][name] for s in scored) / len(scored))
                    log_metric("reward_total", sum(s["total"] for s in scored) / len(scored))
            return self._cache[1]

        funcs = []
        for term in self.active_terms():
            def func(prompts, completions, _term=term, **kwargs):
                return [s["terms"][_term] for s in batch(prompts, completions, **kwargs)]

            func.__name__ = term
            funcs.append(func)
        return funcs

    def totals(self, seekers: Sequence[str], responses: Sequence[str]) -> list[float]:
        return [s["total"] for s in self.score(seekers, responses)]


class RewardScorer:
    """:class:`GuardedReward` as a report/CLI :class:`~therapy_align.scoring.Scorer` (name ``reward``)."""

    name = "reward"

    def __init__(self, reward: GuardedReward) -> None:
        self.reward = reward

    def identity(self) -> Mapping[str, Any]:
        return self.reward.identity()

    def score(self, pairs: Sequence[Pair]) -> list[dict[str, Any]]:
        return self.reward.score_pairs(pairs)

    def summarise(self, pairs: Sequence[Pair], scores: Sequence[Mapping[str, Any]]) -> dict[str, float]:
        return self.reward.summarise(pairs, scores)


def load_config(name: str) -> RewardConfig:
    if name not in CONFIGS:
        raise UserError(f"unknown reward config {name!r}", field="--config", fix=f"choose one of {', '.join(CONFIGS)}")
    return CONFIGS[name]
