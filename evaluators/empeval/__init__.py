"""EMP-EVAL: EPITOME empathy-mechanism classifiers (ER, IP, EX)."""
