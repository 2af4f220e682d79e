"""Training: the SFT stage's config (``config.SftConfig``), its run (``sft_run.train``), and model
loading (``models``: hub ids, the tiny random Llama-2, run directories).

May import `data` and the top-level helpers; never `evaluation` or later stages.
"""
