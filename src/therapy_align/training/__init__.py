"""Training: model loading (hub id, tiny random Llama-2, run directories), and the SFT run.

May import `data` and the top-level helpers; never `evaluation` or later stages.
"""
