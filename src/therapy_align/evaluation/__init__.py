"""Evaluation: generation, the cell evaluator, EMP-EVAL scoring, Table 1, the prompt sweep, reports.

May import `data`, `training`, the evaluators (`empeval`) and the top-level helpers; `data` and
`training` never import it.
"""
