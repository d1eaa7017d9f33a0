"""cramlab: cram a long text into one input vector of a frozen language model, and decode it back.

The heavy modules (torch, transformers) load on first use, so `cramlab.capacity` stays instant.
"""
__version__ = "0.1.0"

from .errors import CramlabError  # noqa: F401

__all__ = ["CramlabError", "__version__"]
