"""The multi-seed table (`python -m research.empeval.seeds`) reads every artifact's metrics.json, old or new."""

from empeval.mechanisms import MECHANISMS
from research.empeval.seeds import table


def _metrics(f1: float, batched: float | None) -> dict:
    metrics = {m: {"macro_f1": f1, "f1_per_level": [0.8, 0.1, 0.8]} for m in MECHANISMS}
    metrics["seeker_shuffle"] = {m: {"drop_percent": 40.0} for m in MECHANISMS}
    if batched is not None:
        metrics["epitome_protocol"] = {
            "whole_reply_dev_offsets": {"batch_size": 32, **{m: {"batch_macro_f1": batched} for m in MECHANISMS}},
            "whole_reply_no_gate_no_offsets": {"batch_size": 32, **{m: {"batch_macro_f1": 0.0} for m in MECHANISMS}},
        }
    return metrics


def test_the_epitome_read_out_column_shows_its_mean_when_every_seed_has_it():
    rows = table({0: _metrics(0.5, 0.6), 1: _metrics(0.6, 0.7)}).splitlines()
    ip = next(line for line in rows if line.startswith("| IP"))
    assert ip.split("|")[2].strip() == "**55.0 ± 7.1**"
    assert ip.rstrip(" |").split("|")[-1].strip() == "65.0 ± 7.1"


def test_artifacts_trained_before_it_show_a_dash():
    ip = next(line for line in table({0: _metrics(0.5, None)}).splitlines() if line.startswith("| IP"))
    assert ip.rstrip(" |").split("|")[-1].strip() == "—"
