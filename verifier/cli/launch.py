"""The `entry-verify` command's first step, before anything heavy is imported: the same inputs give the same
report. Python salts the hashes of strings per process, which orders sets and dicts of names differently from
run to run; the terms the solver is handed, and so the shapes its simplifier leaves, follow that order, and
with them which exception classes an over-approximation keeps apart (the grouping of results, never a verdict).
A fixed salt makes every run of the command take the same path. Only the console script imports this module."""

from __future__ import annotations

import os
import sys

HASH_SEED = "0"

if os.environ.get("PYTHONHASHSEED") != HASH_SEED and sys.argv and os.path.exists(sys.argv[0]):
    os.environ["PYTHONHASHSEED"] = HASH_SEED
    os.execv(sys.executable, [sys.executable, *sys.argv])  # the same command, with the fixed salt

from verifier.cli.main import entry  # noqa: E402  (after the re-execution: nothing heavy twice)

__all__ = ["entry"]
