"""The proof of concept on one's own records: reading, cramming, bytes, precision, alternatives, retrieval,
privacy, cost and the report (`cramlab poc`).

Owns: the practitioner's question. Does not: define the
engine or the papers' science.
"""
