"""Evaluation: one path for every report.

``generation`` (GenerationSpec, ModelLoad, resumable batched generation) -> ``cell`` (the cell
evaluator: model x prompt x inputs x spec x scorers -> generations, per-scorer scores, summary
columns; reference cells of given replies) -> ``table1`` (``Table1Config``, ``run_grid``) /
``sweep`` (``PromptRunConfig``): grids of cells -> ``report`` (tables, chart, examples).
``scorers`` is the package of per-reply scorers, registered by name.

May import `data`, `training`, `safety`, the evaluators (`empeval`, `miti`) and the top-level
helpers; `data` and `training` never import it.
"""
