"""The studies' read-outs of a training run's test split, for `empeval.training.train(read_outs=...)`:

    from research.empeval.training_read_outs import READ_OUTS
    train(config, out, read_outs=READ_OUTS)     # what recipes/empeval_train.py does

- `variants`: test accuracy, macro-F1 and F1 per level of the read-out variants (`read_out_variants`:
  the published path with and without the fits-the-post gate and the dev-tuned offsets) and of
  Lightning's truncated (128-token) argmax test pass;
- `epitome_protocol`: each variant read out as EPITOME's code reports F1, the definition behind
  the F1 anchors (`research.empeval.epitome_protocol`);
- `seeker_shuffle`: the drop of each mechanism's mean level when the same test responses follow
  other seekers' posts, gated (as published) and without the gate.

All read the one forward pass over the test split that training already made (`TestOutputs.views`);
only the shuffle scores the shuffled pairs again.
"""

from __future__ import annotations

import numpy as np

from empeval.mechanisms import MECHANISMS

PUBLISHED_VARIANT = "whole_reply_dev_offsets"  # the name of the published path among the variants


def read_out_variants(gate, offsets) -> dict:
    """The test read-outs of `variants`, as `Evaluator.score_variants` takes them: name -> (fit gate
    on?, offsets). PUBLISHED_VARIANT is the published path (`Evaluator.score`); the others drop the
    gate, the offsets or both."""
    offsets = np.asarray(offsets, dtype=np.float64)
    zero = np.zeros_like(offsets)
    return {"whole_reply_no_gate_no_offsets": (False, zero), "whole_reply_no_offsets": (gate, zero),
            "whole_reply_no_gate_dev_offsets": (False, offsets), PUBLISHED_VARIANT: (gate, offsets)}


def _variant_scores(outputs) -> dict:
    evaluator = outputs.evaluator
    return {name: outputs.views.read_out(gate, offsets)
            for name, (gate, offsets) in read_out_variants(evaluator.fit_gate, evaluator.offsets).items()}


def variants(outputs) -> dict:
    from empeval.training import split_metrics_of

    results = outputs.lightning_test
    return {"variants": {
        "truncated_128_no_offsets": {
            m: {"accuracy": float(results[f"test/{m}/accuracy"]), "macro_f1": float(results[f"test/{m}/macro_f1"])}
            for m in MECHANISMS
        },
        **{name: split_metrics_of(scores, outputs.labels) for name, scores in _variant_scores(outputs).items()},
    }}


def epitome_protocol(outputs) -> dict:
    """EPITOME's own read-out (mean of per-batch macro-F1) of every variant: the definition behind
    the F1 anchors, not comparable with the headline."""
    from research.empeval.epitome_protocol import protocol_read_out

    return {"epitome_protocol": {name: protocol_read_out(scores.levels, outputs.labels)
                                 for name, scores in _variant_scores(outputs).items()}}


def shuffle_drop(real_scores, shuffled_scores) -> dict:
    """Mean level per mechanism of real pairs and of shuffled ones, and the drop in %."""
    from empeval.probe import mean_levels

    real, shuffled = mean_levels(real_scores), mean_levels(shuffled_scores)
    return {
        m: {"real": real[m], "shuffled": shuffled[m],
            "drop_percent": 100.0 * (real[m] - shuffled[m]) / real[m] if real[m] else None}
        for m in MECHANISMS
    }


def seeker_shuffle_drop(evaluator, seekers, responses, sp_ids, seed: int = 0) -> dict:
    """`shuffle_drop` of an evaluator's published scores, real pairs against the same responses
    after other seekers' posts."""
    from empeval.probe import shuffled_seekers

    return shuffle_drop(
        evaluator.score(list(seekers), list(responses)),
        evaluator.score(shuffled_seekers(list(seekers), list(sp_ids), seed), list(responses)),
    )


def seeker_shuffle(outputs) -> dict:
    from empeval.probe import shuffled_seekers

    evaluator, scores = outputs.evaluator, _variant_scores(outputs)
    shuffled = evaluator.score_variants(
        shuffled_seekers(outputs.seekers, outputs.sp_ids, outputs.config.seed), outputs.responses,
        {"gated": (evaluator.fit_gate, evaluator.offsets), "ungated": (False, evaluator.offsets)},
    )
    return {"seeker_shuffle": shuffle_drop(scores[PUBLISHED_VARIANT], shuffled["gated"]),
            "seeker_shuffle_without_fit_gate": shuffle_drop(scores["whole_reply_no_gate_dev_offsets"], shuffled["ungated"])}


READ_OUTS = (variants, epitome_protocol, seeker_shuffle)
