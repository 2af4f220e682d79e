"""Studies of the EMP-EVAL evaluator (docs/research/evaluator-studies.md): multi-seed tables, seed
ensembles, larger backbones, EPITOME's per-batch read-out, decision-rule ceilings and learnability.
Run from the repository root, e.g. `python -m research.empeval.seeds --seeds 0 1 2`."""
