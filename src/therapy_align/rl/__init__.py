"""The RL follow-up of paper §6: one typed config per stage (:mod:`.config`: GRPO and iterated DPO),
the trainers (:mod:`.grpo`, :mod:`.dpo` with its rounds in :mod:`.dpo_rounds`), the policy model and
its run directory (:mod:`.policy_model`), one guarded multi-objective reward (:mod:`.reward`), the RL
prompt sets (:mod:`.prompts`), held-out judging inside every run (:mod:`.judging`), per-step curves
(:mod:`.curves`) and the ``therapy-align reward`` command (:mod:`.cli`). The presets are in
``recipes/rl_empathy.py`` (GRPO) and ``recipes/dpo_empathy.py`` (DPO).

May import ``data``, ``training``, ``evaluation``, ``safety``, the evaluators and the top-level
helpers; nothing below ``rl`` imports it.
"""
