"""entry-verify: an SMT-backed verifier for the arm64 kernel's exception entry and return code."""

__version__ = "0.1.0"
