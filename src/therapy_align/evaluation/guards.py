"""Guard measures: the cheap, model-free (or small-encoder) checks that catch replies an empathy
classifier over-rewards. The same functions feed the RL reward (:mod:`therapy_align.rl.reward`) and
every report (``therapy_align.evaluation.scorers.guards``, scorer name ``guards``), so a number in a
report means exactly what the reward penalised.

Each measure is a pure function of the texts (words are lower-cased ``[a-z0-9']+`` runs):

==================  =============================================================================
measure             definition
==================  =============================================================================
``len_tokens``      tokens of the reply (the project's Llama-2 tokenizer, or words without one)
``distinct_2``      over a SET of replies: unique word bigrams / all word bigrams
``template_rate``   share of a reply's word 4-grams that also occur in a reply to ANOTHER seeker
                    (a canned reply sent to every post scores 1; honest replies share a few
                    stock phrases such as "it sounds like you")
``specificity``     cos(reply, own post) - mean cos(reply, other posts), MiniLM sentence
                    embeddings (all-MiniLM-L6-v2): how much more the reply is about THIS seeker
``copy_rate``       share of a reply's word 3-grams found in the seeker's own post
``repetition``      1 - unique / all word 3-grams inside the reply (TRL's repetition-penalty
                    formula, :func:`trl.rewards.get_repetition_penalty_reward`, on word ids)
``question_rate``   share of the reply's sentences that end with ``?``
==================  =============================================================================

Caveat: ``template_rate`` and ``specificity`` need replies to / posts of OTHER seekers: in a set with
one seeker they are 0 unless ``background_posts`` are given for specificity.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

WORD = re.compile(r"[a-z0-9']+")
SENTENCE_END = re.compile(r"[^.!?]+[.!?]*")
GUARDS_VERSION = 1


# --------------------------------------------------------------------------- text pieces


def words(text: str) -> list[str]:
    """Lower-cased word tokens (letters, digits, apostrophes)."""
    return WORD.findall(text.lower())


def ngrams(tokens: Sequence[Any], n: int) -> list[tuple]:
    return list(zip(*(tokens[i:] for i in range(n)))) if len(tokens) >= n else []


def sentences(text: str) -> list[str]:
    return [s.strip() for s in SENTENCE_END.findall(text) if words(s)]


# --------------------------------------------------------------------------- per-reply measures


def repetition(text: str, n: int = 3) -> float:
    """1 - unique/all word ``n``-grams in one reply: 0 for no repeat, 2/3 for a reply said three times.

    Computed by TRL's own repetition penalty (``max_penalty=-1``) on word ids."""
    from trl.rewards import get_repetition_penalty_reward

    vocabulary: dict[str, int] = {}
    ids = [vocabulary.setdefault(word, len(vocabulary)) for word in words(text)]
    return -float(get_repetition_penalty_reward(ngram_size=n, max_penalty=-1.0)([ids])[0]) + 0.0


def copy_rate(seeker: str, response: str, n: int = 3) -> float:
    """Share of the reply's word ``n``-grams that appear in the seeker's post (1 = a verbatim copy)."""
    reply = ngrams(words(response), n)
    if not reply:
        return 0.0
    post = set(ngrams(words(seeker), n))
    return sum(gram in post for gram in reply) / len(reply)


def question_rate(text: str) -> float:
    """Share of sentences that are questions (end with ``?``); 0 for an empty reply."""
    parts = sentences(text)
    return sum(part.endswith("?") for part in parts) / len(parts) if parts else 0.0


def len_words(text: str) -> int:
    return len(words(text))


# --------------------------------------------------------------------------- set measures


def distinct_n(responses: Sequence[str], n: int = 2) -> float:
    """Unique / all word ``n``-grams over a set of replies (0 when there are none)."""
    grams = [gram for text in responses for gram in ngrams(words(text), n)]
    return len(set(grams)) / len(grams) if grams else 0.0


def template_rates(seekers: Sequence[str], responses: Sequence[str], n: int = 4,
                   memory: Sequence[tuple[str, frozenset]] = ()) -> list[float]:
    """Per reply: share of its word ``n``-grams that also occur in a reply to another seeker.

    Replies are grouped by seeker text (several replies to one post never count against each
    other). ``memory`` adds earlier ``(seeker, n-gram set)`` replies (an RL run's recent batches)."""
    owners: dict[tuple, set[str]] = defaultdict(set)
    grams_of = [set(ngrams(words(r), n)) for r in responses]
    for seeker, grams in zip(seekers, grams_of):
        for gram in grams:
            owners[gram].add(seeker)
    for seeker, grams in memory:
        for gram in grams:
            owners[gram].add(seeker)
    rates = []
    for seeker, grams in zip(seekers, grams_of):
        if not grams:
            rates.append(0.0)
            continue
        shared = sum(1 for gram in grams if owners[gram] - {seeker})
        rates.append(shared / len(grams))
    return rates


def specificity(seekers: Sequence[str], responses: Sequence[str], *, embed: Callable | None = None,
                background_posts: Sequence[str] = ()) -> list[float]:
    """Per reply: cos(reply, own post) - mean cos(reply, each OTHER distinct post).

    The other posts are the set's other seekers plus ``background_posts``; with none, 0. An empty
    reply scores 0. Positive = the reply is more about its own seeker than about anyone else's."""
    if embed is None:  # the process-wide encoder: posts and replies EMP-EVAL's gate embedded come from its memo
        from therapy_align.sentence_embedding import SentenceEncoder

        embed = SentenceEncoder.shared().embed
    posts = list(dict.fromkeys([*seekers, *background_posts]))
    if len(posts) < 2 or not responses:
        return [0.0] * len(responses)
    index = {post: i for i, post in enumerate(posts)}
    post_vecs, reply_vecs = embed(posts), embed(list(responses))
    sims = reply_vecs @ post_vecs.T  # (replies, posts)
    out = []
    for row, (seeker, response) in enumerate(zip(seekers, responses)):
        if not words(response):
            out.append(0.0)
            continue
        own = index[seeker]
        others = (sims[row].sum() - sims[row, own]) / (len(posts) - 1)
        out.append(round(float(sims[row, own] - others), 6))
    return out


# --------------------------------------------------------------------------- every measure at once


@dataclass(frozen=True, kw_only=True)
class GuardSettings:
    template_n: int = 4
    copy_n: int = 3
    repetition_n: int = 3
    tokenizer: str | None = None  # None: the project's Llama-2 tokenizer (../shared); "words": word count


def measure(seekers: Sequence[str], responses: Sequence[str], *, settings: GuardSettings = GuardSettings(),
            count_tokens: Callable[[str], int] | None = None, embed: Callable | None = None,
            background_posts: Sequence[str] = (), memory: Sequence[tuple[str, frozenset]] = ()) -> list[dict[str, float]]:
    """Every per-reply guard measure for a set of (seeker, reply) pairs, one dict per pair."""
    count_tokens = count_tokens or len_words
    templates = template_rates(seekers, responses, settings.template_n, memory)
    specific = specificity(seekers, responses, embed=embed, background_posts=background_posts)
    return [
        {
            "len_tokens": count_tokens(response),
            "specificity": specific[i],
            "copy_rate": round(copy_rate(seeker, response, settings.copy_n), 6),
            "template_rate": round(templates[i], 6),
            "repetition": round(repetition(response, settings.repetition_n), 6),
            "question_rate": round(question_rate(response), 6),
        }
        for i, (seeker, response) in enumerate(zip(seekers, responses))
    ]


def token_counter(tokenizer: str | None) -> Callable[[str], int]:
    """Counts reply tokens with the project tokenizer (``None``: ../shared Llama-2), or words."""
    if tokenizer == "words":
        return len_words
    from therapy_align.data.chat_format import load_tokenizer

    tok = load_tokenizer(tokenizer)
    return lambda text: len(tok(text, add_special_tokens=False).input_ids)
