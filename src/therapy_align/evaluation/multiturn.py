"""Multi-turn evaluation on whole held-out sessions (the paper's §6 future work: "hold a full conversation").

:func:`run` takes a :class:`MultiturnConfig` (``recipes/eval_multiturn.py`` holds the presets).

Replay mode: for every client turn of a held-out session (the ``annomi80`` split's 20% of
high-quality AnnoMI transcripts, cleaned and paired into exchanges exactly as for training), the
model writes the therapist's reply from the *real* preceding context. The context is fitted to
the window the way training chunks are (`therapy_align.data.chunking`): it opens with the system
prompt, holds whole exchanges only, and drops the oldest exchanges first; a client turn too long
even alone is cut from the left (`generation.fit_prompt`). The human therapist's real replies are
scored the same way, as the reference row.

Simulated-client mode: a second model, prompted as the client with a held-out session's topic
and its real opening client turn, talks with the therapist model for N turns; the transcripts are
saved and scored the same way.

Every reply becomes a pair (seeker = the client turn it answers) in a reference cell, so the cell
evaluator scores it with every scorer (EMP-EVAL: E, I, X, final; MITI: R:Q, %CR, open %) and the
report shows model rows beside the human row. Generation and simulation resume after a kill
through :class:`~therapy_align.store.ResultStore`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from therapy_align.data.cleaning import CLIENT, OPENER_POLICIES, Exchange, clean_turns, to_exchanges
from therapy_align.data.dataset_build import MIN_MAX_TOKENS
from therapy_align.data.transcripts import Transcript
from therapy_align.errors import UserError
from therapy_align.evaluation.generation import GenerationSpec, reply_models
from therapy_align.files import atomic_write_jsonl
from therapy_align.overrides import check_choice, check_range
from therapy_align.store import ResultStore

# A client turn needs at least this many tokens in the window beside the system prompt and the reply.
MIN_CLIENT_TOKENS = 8
CLIENT_ROLE_PROMPT = (
    "You are role-playing a client in a counselling session about {topic}. You opened the session by saying: "
    "\"{opening}\" Speak only as the client, in the first person, in one to three sentences, the way real "
    "clients talk. Never act as the counsellor."
)


# --------------------------------------------------------------------------------------------
# The config
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class ContextConfig:
    """What the therapist model sees before each client turn."""

    max_tokens: int = 4096  # the window: the training chunks' length
    system_prompt: str = "standard"  # a name from therapy_align.data.system_prompts
    opener_policy: str = "neutral_opener"  # how a session that opens with the therapist is paired (data build's default)

    def __post_init__(self) -> None:
        check_range(self, "max_tokens", ge=MIN_MAX_TOKENS, fix="a window must hold the system prompt and a turn")
        check_choice(self, "opener_policy", OPENER_POLICIES)


@dataclass(frozen=True, kw_only=True)
class SessionsConfig:
    """Which sessions are replayed: AnnoMI's held-out ones, or your own transcripts."""

    data_dir: str | None = None  # None: $THERAPY_ALIGN_DATA or ../shared/data
    seed: int = 0  # the annomi80 split's seed: its held-out 20% (22 sessions)
    limit: int | None = None  # the first N held-out sessions (None: all)
    max_turns: int | None = None  # the first N client turns of each session (None: all)
    transcripts: tuple[str, ...] = ()  # your own plain-text sessions instead of AnnoMI's

    def __post_init__(self) -> None:
        check_range(self, "seed", ge=0)
        check_range(self, "limit", ge=1, allow_none=True)
        check_range(self, "max_turns", ge=1, allow_none=True)


@dataclass(frozen=True, kw_only=True)
class SimulationConfig:
    """A second model plays the client (off by default)."""

    enabled: bool = False
    client_model: str = "base"  # prompted with the session's topic and real opening turn
    n_turns: int = 6  # therapist replies per simulated conversation
    sessions: int | None = 5  # the first N held-out sessions give topic and opening (None: all)

    def __post_init__(self) -> None:
        check_range(self, "n_turns", ge=1)
        check_range(self, "sessions", ge=1, allow_none=True)


@dataclass(frozen=True, kw_only=True)
class MultiturnConfig:
    """One multi-turn evaluation: models x held-out sessions, scored by ``scorers``, written to ``out``."""

    out: str = "runs/eval-multiturn"
    models: tuple[str, ...] = ("base=base", "annomi80=runs/sft-annomi80", "full_plus=runs/sft-full_plus")  # name=ref
    scorers: tuple[str, ...] = ("empeval", "miti")  # names in therapy_align.evaluation.scorers.REGISTRY
    artifacts: tuple[str, ...] = ()  # scorer artifacts, name=dir (default artifacts/empeval, artifacts/miti)
    allow_quick: bool = False  # no artifact -> a quick smoke evaluator (the report says so)
    force: bool = False  # recompute stored results made from other inputs, models or settings
    generation: GenerationSpec = field(default_factory=GenerationSpec)
    context: ContextConfig = field(default_factory=ContextConfig)
    sessions: SessionsConfig = field(default_factory=SessionsConfig)
    simulation: SimulationConfig = field(default_factory=SimulationConfig)


@dataclass(frozen=True)
class Session:
    id: str
    topic: str
    exchanges: tuple[Exchange, ...]


@dataclass(frozen=True)
class TurnItem:
    """Client turn ``index`` of a session, with the real exchanges before it."""

    id: str
    session: str
    index: int
    client: str
    human_reply: str
    history: tuple[Exchange, ...]


def to_session(transcript: Transcript, *, opener_policy: str = "neutral_opener", source: str = "") -> Session:
    """A transcript cleaned and paired as for training; one with no client turn is a UserError."""
    turns, _ = clean_turns(list(transcript.turns))
    if not any(turn.speaker == CLIENT for turn in turns):
        raise UserError("has no client turns: there is nothing for the therapist model to answer",
                        file=source or transcript.transcript_id, field="client turns",
                        fix="give a transcript with Client:/C: lines")
    exchanges, _ = to_exchanges(turns, opener_policy=opener_policy)
    return Session(transcript.transcript_id, transcript.topic, tuple(exchanges))


def heldout_sessions(data_dir: str | os.PathLike | None = None, *, seed: int = 0, opener_policy: str = "neutral_opener",
                     limit: int | None = None) -> list[Session]:
    """The ``annomi80`` split's held-out high-quality transcripts (the same call as the data build)."""
    from therapy_align.data.splits import TRAIN_FRACTION, split_transcript_ids
    from therapy_align.data.transcripts import load_annomi

    transcripts, _ = load_annomi(data_dir)
    high = {t.transcript_id: t for t in transcripts if t.quality == "high"}
    _, heldout = split_transcript_ids(high, fraction=TRAIN_FRACTION, seed=seed)
    return [to_session(high[i], opener_policy=opener_policy) for i in heldout[:limit]]


def sessions_from_files(paths: Sequence[str | os.PathLike], *, opener_policy: str = "neutral_opener") -> list[Session]:
    """Your own sessions (the plain-text transcript format of `therapy_align.data.transcripts`)."""
    from therapy_align.data.transcripts import TranscriptFormatError, load_plain_transcript

    sessions = []
    for path in paths:
        try:
            transcript = load_plain_transcript(path)
        except TranscriptFormatError as err:
            raise UserError(str(err), field="transcripts") from None
        sessions.append(to_session(transcript, opener_policy=opener_policy, source=str(path)))
    return sessions


def turn_items(sessions: Sequence[Session], *, max_turns: int | None = None) -> list[TurnItem]:
    """One item per client turn (the first ``max_turns`` of each session)."""
    return [
        TurnItem(f"{s.id}-{k}", s.id, k, ex.client, ex.therapist, s.exchanges[:k])
        for s in sessions for k, ex in enumerate(s.exchanges[:max_turns])
    ]


# --------------------------------------------------------------------------------------------
# Where a reply ends
# --------------------------------------------------------------------------------------------


# --------------------------------------------------------------------------------------------
# Fitting the context to the window
# --------------------------------------------------------------------------------------------


def conversation_messages(system_prompt: str | None, history: Sequence[Exchange], client: str) -> list[dict[str, str]]:
    messages = [] if system_prompt is None else [{"role": "system", "content": system_prompt}]
    for exchange in history:
        messages += [{"role": "user", "content": exchange.client}, {"role": "assistant", "content": exchange.therapist}]
    return messages + [{"role": "user", "content": client}]


def _ids(tokenizer, messages: list[dict[str, str]]) -> list[int]:
    # The generation prompt opens the model's turn where the template has one (Gemma's
    # ``<start_of_turn>model``); Llama-2's template ends at ``[/INST]`` either way.
    encoded = tokenizer.apply_chat_template(messages, tokenize=True, add_generation_prompt=True)
    return list(encoded["input_ids"] if hasattr(encoded, "keys") else encoded)


def check_window(tokenizer, system_prompt: str | None, window: int, max_new_tokens: int) -> None:
    """The window must hold one exchange: system prompt, a client turn and the reply."""
    from therapy_align.evaluation.generation import prompt_ids

    needed = len(prompt_ids(tokenizer, system_prompt, "")) + MIN_CLIENT_TOKENS + max_new_tokens
    if window < needed:
        raise UserError(f"a context window of {window} tokens is smaller than one exchange (system prompt and "
                        f"chat markup, {MIN_CLIENT_TOKENS} client tokens and a {max_new_tokens}-token reply = {needed})",
                        field="context.max_tokens", fix=f"give at least {needed}, or fewer generation.max_new_tokens")


def fit_context(tokenizer, system_prompt: str | None, history: Sequence[Exchange], client: str, *, window: int,
                max_new_tokens: int, start: int = 0) -> tuple[list[int], int, int]:
    """Prompt ids of ``history[s:]`` + ``client`` for the smallest ``s >= start`` that leaves
    ``max_new_tokens`` of ``window``: whole exchanges, oldest dropped first, the system prompt kept.
    Returns ``(ids, s, client tokens cut)``; with no history left, the client turn is cut from the left."""
    from therapy_align.evaluation.generation import fit_prompt

    limit = window - max_new_tokens
    for s in range(start, len(history) + 1):
        ids = _ids(tokenizer, conversation_messages(system_prompt, history[s:], client))
        if len(ids) <= limit:
            return ids, s, 0
    ids, cut = fit_prompt(tokenizer, system_prompt, client, limit)
    return ids, len(history), cut


# --------------------------------------------------------------------------------------------
# Replay: the model's reply at every client turn
# --------------------------------------------------------------------------------------------


def _batched(items: Sequence[Any], size: int):
    for start in range(0, len(items), size):
        yield items[start:start + size]


def replay(model_ref: str, items: Sequence[TurnItem], out: str | os.PathLike, *, spec, system_prompt: str | None,
           max_tokens: int, models=None, force: bool = False,
           on_progress: Callable[[int], None] | None = None) -> list[dict[str, Any]]:
    """The model's reply to every item into ``out`` (resumable); returns the records in item order."""
    from therapy_align.evaluation.generation import batch_seed, generate_batch, model_identity, model_window

    store = ResultStore(out, force=force, made_from={
        "model": model_identity(model_ref),
        "settings": {"generation": spec.identity(), "system_prompt": system_prompt, "max_tokens": max_tokens}})
    by_id = {item.id: item for item in items}
    todo = store.start({item.id: {"client": item.client, "history": [(e.client, e.therapist) for e in item.history]}
                        for item in items})
    if on_progress and len(items) > len(todo):
        on_progress(len(items) - len(todo))
    if todo:
        model, tokenizer = (models or reply_models()).get(model_ref)
        window = min(max_tokens, model_window(model) or max_tokens)
        check_window(tokenizer, system_prompt, window, spec.max_new_tokens)
        prompts, starts = {}, {}
        for item_id in todo:
            item = by_id[item_id]
            ids, start, cut = fit_context(tokenizer, system_prompt, item.history, item.client, window=window,
                                          max_new_tokens=spec.max_new_tokens, start=starts.get(item.session, 0))
            starts[item.session] = start
            prompts[item_id] = (ids, len(item.history) - start, cut)
        ordered = sorted(todo, key=lambda i: -len(prompts[i][0])) if spec.sort_by_length else list(todo)
        for batch in _batched(ordered, spec.batch_size):
            replies = generate_batch(model, tokenizer, [prompts[i][0] for i in batch], spec,
                                     seed=batch_seed(spec.seed, batch))
            store.append({"id": i, "session": by_id[i].session, "turn": by_id[i].index, "client": by_id[i].client,
                          "response": text, "new_tokens": n, "context_exchanges": prompts[i][1],
                          "prompt_tokens": len(prompts[i][0]), "client_tokens_cut": prompts[i][2]}
                         for i, (text, n) in zip(batch, replies))
            if on_progress:
                on_progress(len(batch))
    store.finish()
    return store.records()


def human_records(items: Sequence[TurnItem]) -> list[dict[str, Any]]:
    return [{"id": item.id, "session": item.session, "turn": item.index, "client": item.client,
             "response": item.human_reply} for item in items]


def write_pairs(records: Sequence[dict[str, Any]], path: str | os.PathLike) -> Path:
    """A reference cell's pairs file: seeker = the client turn each reply answers."""
    atomic_write_jsonl(path, [{"id": r["id"], "seeker": r["client"], "response": r["response"]} for r in records])
    return Path(path)


# --------------------------------------------------------------------------------------------
# Simulated client
# --------------------------------------------------------------------------------------------


def client_view(clients: Sequence[str], therapists: Sequence[str]) -> tuple[list[Exchange], str]:
    """The conversation as the client model sees it: the therapist's turns are its "user" turns and
    its own later turns the replies; the opening client turn is in its system prompt."""
    return [Exchange(therapists[j], clients[j + 1]) for j in range(len(therapists) - 1)], therapists[-1]


def simulate(therapist_ref: str, client_ref: str, sessions: Sequence[Session], out: str | os.PathLike, *, spec,
             system_prompt: str | None, max_tokens: int, n_turns: int, models=None, force: bool = False,
             on_progress: Callable[[int], None] | None = None) -> list[dict[str, Any]]:
    """Conversations of ``n_turns`` therapist replies, opened by each session's real first client
    turn; one line per session in ``out`` (resumable: finished conversations are kept)."""
    from therapy_align.evaluation.generation import batch_seed, generate_batch, model_identity, model_window

    store = ResultStore(out, force=force, made_from={
        "model": {"therapist": model_identity(therapist_ref), "client": model_identity(client_ref)},
        "settings": {"generation": spec.identity(), "system_prompt": system_prompt, "max_tokens": max_tokens,
                     "n_turns": n_turns, "client_prompt": CLIENT_ROLE_PROMPT}})
    by_id = {s.id: s for s in sessions}
    todo = store.start({s.id: {"topic": s.topic, "opening": s.exchanges[0].client} for s in sessions})
    if on_progress and len(sessions) > len(todo):
        on_progress(len(sessions) - len(todo))
    caches = {therapist_ref: models or reply_models()}
    caches.setdefault(client_ref, reply_models())  # one model each, so the turns do not reload them
    for batch in _batched(todo, spec.batch_size):
        talks = {i: {"clients": [by_id[i].exchanges[0].client], "therapists": []} for i in batch}
        for turn in range(n_turns):
            for role in ("therapist", "client"):
                if role == "client" and turn == n_turns - 1:
                    break
                ref = therapist_ref if role == "therapist" else client_ref
                model, tokenizer = caches[ref].get(ref)
                window = min(max_tokens, model_window(model) or max_tokens)
                prompts = []
                for i in batch:
                    clients, therapists = talks[i]["clients"], talks[i]["therapists"]
                    if role == "therapist":
                        history, last, prompt = [Exchange(c, t) for c, t in zip(clients, therapists)], clients[-1], system_prompt
                    else:
                        history, last = client_view(clients, therapists)
                        prompt = CLIENT_ROLE_PROMPT.format(topic=by_id[i].topic, opening=clients[0])
                    ids, _, _ = fit_context(tokenizer, prompt, history, last, window=window,
                                            max_new_tokens=spec.max_new_tokens)
                    prompts.append(ids)
                replies = generate_batch(model, tokenizer, prompts, spec, seed=batch_seed(spec.seed + turn, list(batch)))
                for i, (text, _) in zip(batch, replies):
                    talks[i]["therapists" if role == "therapist" else "clients"].append(text)
        store.append({"id": i, "topic": by_id[i].topic, "clients": talks[i]["clients"],
                      "therapists": talks[i]["therapists"]} for i in batch)
        if on_progress:
            on_progress(len(batch))
    for cache in caches.values():
        cache.release()
    store.finish()
    return store.records()


def simulated_records(conversations: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each therapist reply of the simulated conversations as a record (client turn before it)."""
    return [{"id": f"{c['id']}-{k}", "session": c["id"], "turn": k, "client": client, "response": reply}
            for c in conversations for k, (client, reply) in enumerate(zip(c["clients"], c["therapists"]))]


# --------------------------------------------------------------------------------------------
# Conversation-level tables
# --------------------------------------------------------------------------------------------


def mean_words(records: Sequence[dict[str, Any]]) -> float | None:
    return sum(len(r["response"].split()) for r in records) / len(records) if records else None


def conversation_rows(row: str, records: Sequence[dict[str, Any]], scorers, scores: dict[str, list[dict]]) -> list[dict]:
    """One row per session: every scorer's columns on that session's replies, and mean length."""
    from therapy_align.scoring import Pair

    sessions: dict[str, list[int]] = {}
    for index, record in enumerate(records):
        sessions.setdefault(str(record["session"]), []).append(index)
    rows = []
    for session, indices in sessions.items():
        pairs = [Pair(id=records[i]["id"], seeker=records[i]["client"], response=records[i]["response"]) for i in indices]
        metrics: dict[str, Any] = {}
        for scorer in scorers:
            metrics.update(scorer.summarise(pairs, [scores[scorer.name][i] for i in indices]))
        rows.append({"row": row, "session": session, "n": len(indices), **metrics,
                     "mean words": mean_words([records[i] for i in indices])})
    return rows


def conversation_means(rows: Sequence[dict[str, Any]]) -> dict[str, float | None]:
    """The mean over sessions of each numeric column (a session without a value is left out)."""
    columns = [k for k in (rows[0] if rows else {}) if k not in ("row", "session", "n")]
    out: dict[str, float | None] = {}
    for column in columns:
        values = [r[column] for r in rows if isinstance(r.get(column), (int, float))]
        out[f"{column} (session mean)"] = sum(values) / len(values) if values else None
    return out


# --------------------------------------------------------------------------------------------
# The whole run
# --------------------------------------------------------------------------------------------


def _table_rows(cells, records_by_row: dict[str, list[dict]], scorers, mode: str) -> tuple[list[dict], list[dict]]:
    rows, per_session = [], []
    for cell in cells:
        name = cell.spec.row
        sessions = conversation_rows(name, records_by_row[name], scorers, cell.scores)
        per_session += sessions
        rows.append({"model": name, "prompt": mode, "model_ref": cell.spec.pairs, "n": cell.n, **cell.metrics,
                     "mean words": mean_words(records_by_row[name]), "sessions": len(sessions),
                     **conversation_means(sessions)})
    return rows, per_session


def run(cfg: MultiturnConfig, *, console=None) -> dict[str, Path]:
    """Replay (and, if enabled, simulated-client) evaluation for ``cfg``; returns the report paths.
    Every stage resumes."""
    from therapy_align.data.system_prompts import check_prompt
    from therapy_align.evaluation.cell import CellSpec, evaluate_cells
    from therapy_align.evaluation.report import TINY_NOTE, is_tiny_reference, to_markdown, write_report
    from therapy_align.evaluation.scorers import ScorerContext, make_scorers
    from therapy_align.evaluation.table1 import named_values
    from therapy_align.files import atomic_write_text
    from therapy_align.training.models import classify_reference

    out = Path(cfg.out)
    models = named_values(cfg.models, "models")
    if not models:
        raise UserError("no models to evaluate", field="models", fix="give name=ref entries, e.g. --models=base=base")
    for ref in models.values():
        classify_reference(ref)  # an unknown model fails here, before any work
    if cfg.simulation.enabled:
        classify_reference(cfg.simulation.client_model)
    system_prompt = check_prompt(cfg.context.system_prompt)
    s = cfg.sessions
    sessions = (sessions_from_files(s.transcripts, opener_policy=cfg.context.opener_policy) if s.transcripts else
                heldout_sessions(s.data_dir, seed=s.seed, opener_policy=cfg.context.opener_policy, limit=s.limit))
    items = turn_items(sessions, max_turns=s.max_turns)
    context = ScorerContext(work_dir=out, artifacts=named_values(cfg.artifacts, "artifacts"),
                            allow_quick=cfg.allow_quick, console=console)
    scorers = make_scorers(cfg.scorers, context)
    cache = reply_models()
    records = {"human": human_records(items)}
    for name, ref in models.items():
        if console is not None:
            console.print(f"replay: {name} ({ref}) on {len(items)} client turns of {len(sessions)} sessions")
        records[name] = replay(ref, items, out / "generations" / f"{name}.jsonl", spec=cfg.generation,
                               system_prompt=system_prompt, max_tokens=cfg.context.max_tokens, models=cache,
                               force=cfg.force)
    specs = [CellSpec(row=name, prompt="", pairs=str(write_pairs(rows, out / "pairs" / f"{name}.jsonl")))
             for name, rows in records.items()]
    cells = evaluate_cells(specs, out / "cells", inputs=[], generation=cfg.generation, scorers=scorers,
                           force=cfg.force, console=console)
    rows, per_session = _table_rows(cells, records, scorers, "replay")
    tiny = any(is_tiny_reference(ref) for ref in models.values())
    notes = [*([TINY_NOTE] if tiny else []),
             f"{len(sessions)} held-out sessions, {len(items)} client turns; each reply written from the real "
             f"preceding context (at most {cfg.context.max_tokens} tokens, whole exchanges, oldest dropped first).",
             "human = the real therapists' replies to the same client turns, scored the same way.",
             *[note for scorer in scorers for note in getattr(scorer, "notes", [])]]
    report = write_report(out / "report", rows, title="# Multi-turn evaluation (held-out sessions)", notes=notes,
                          label_key=lambda row: row["model"])
    session_columns = list(dict.fromkeys(key for r in per_session for key in r))
    sections = ["# Per session (replay)\n", to_markdown(per_session, session_columns)]
    if cfg.simulation.enabled:
        sim = cfg.simulation
        sim_records, sim_specs = {}, []
        for name, ref in models.items():
            conversations = simulate(ref, sim.client_model, sessions[:sim.sessions], out / "simulated" / f"{name}.jsonl",
                                     spec=cfg.generation, system_prompt=system_prompt,
                                     max_tokens=cfg.context.max_tokens, n_turns=sim.n_turns, models=cache, force=cfg.force)
            sim_records[f"sim-{name}"] = simulated_records(conversations)
            sim_specs.append(CellSpec(row=f"sim-{name}", prompt="", pairs=str(
                write_pairs(sim_records[f"sim-{name}"], out / "pairs" / f"sim-{name}.jsonl"))))
        sim_cells = evaluate_cells(sim_specs, out / "cells", inputs=[], generation=cfg.generation, scorers=scorers,
                                   force=cfg.force, console=console)
        sim_rows, _ = _table_rows(sim_cells, sim_records, scorers, f"simulated client ({sim.client_model})")
        sections += [f"\n# Simulated client: {sim.n_turns} therapist turns, client model {sim.client_model}\n",
                     to_markdown(sim_rows)]
    report["sessions"] = atomic_write_text(out / "report" / "sessions.md", "\n".join(sections) + "\n")
    return report
