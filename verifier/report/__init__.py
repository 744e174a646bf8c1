"""Rendering results: the text report, the verdict tables in proofs/results/, progress lines."""
