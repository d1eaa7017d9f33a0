"""Frozen models and exact-N-token texts: loading (embedded GGUF, hub, folders, tiny fixtures), the
on-disk cache, the text sources.

Owns: what is crammed into what. Does not: train or report.
"""
