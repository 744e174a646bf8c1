"""Lowest layer: user-facing errors, reading data files, writing outputs, showing paths. Imports nothing of the
verifier.
"""
