"""Studies of the crisis detector (findings: docs/research/safety-encoders.md)."""
