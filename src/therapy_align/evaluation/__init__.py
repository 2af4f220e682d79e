"""Evaluation: one path for every report.

``generation`` (GenerationSpec, ModelLoad, resumable batched generation) -> ``cell`` (the cell
evaluator: model x prompt x inputs x spec x scorers -> generations, per-scorer scores, summary
columns; reference cells of given replies) -> ``table1`` / ``sweep`` (grids of cells) ->
``report`` (tables, chart, examples). ``scorers`` is the registry of per-reply scorers by name
(``empathy_scoring``: EMP-EVAL and the judge; later stages register theirs).

May import `data`, `training`, `safety`, the evaluators (`empeval`, `miti`) and the top-level
helpers; `data` and `training` never import it.
"""
