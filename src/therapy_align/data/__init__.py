"""Data: AnnoMI and user transcripts -> cleaned exchanges -> chat chunks in the target model's format with assistant-only labels.

Owns reading (`transcripts`), cleaning, the chat template and system prompts (`chat_format`,
`system_prompts`), chunking, masking, splits and the dataset build. Imports nothing from
`training`, `evaluation` or later stages; may import the top-level `paths`, `files`, `overrides`.
"""
