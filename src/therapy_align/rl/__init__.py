"""The RL follow-up of paper §6: one guarded multi-objective reward (:mod:`.reward`), the RL prompt
sets (:mod:`.prompts`), held-out judging inside every run (:mod:`.judging`), iterated DPO rounds
(:mod:`.dpo_rounds`) and the ``therapy-align reward`` command (:mod:`.cli`). The recipes
``recipes/rl_empathy.py`` (GRPO) and ``recipes/dpo_empathy.py`` (DPO) hold the hyperparameters.

May import ``data``, ``training``, ``evaluation``, ``safety``, the evaluators and the top-level
helpers; nothing below ``rl`` imports it.
"""
