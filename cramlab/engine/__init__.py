"""The engine: settings and presets, the one step, its three schedulers (plain, fast, grow), decoding and
vector files.

Owns: how a text is crammed into vectors and read back. Does not: load models, choose
lengths, aggregate results or draw.
"""
