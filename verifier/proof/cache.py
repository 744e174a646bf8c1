"""Proof results cached by everything they depend on: the snapshot of the lifted inputs, the contracts,
assumptions, waivers and policy (by content), the options, and the tool itself (a digest of its code and
grammars, so a changed engine never reuses an old verdict). One entry per vector slot, so shards and
interrupted runs reuse what they finished."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import asdict
from functools import cache
from pathlib import Path
from typing import Any

from verifier import __version__
from verifier.proof.config import ProveConfig
from verifier.proof.slot import SlotOutcome
from verifier.util.paths import ROOT

_TOOL_ROOT = ROOT


@cache
def tool_digest() -> str:
    """The tool's version and a digest of the code and grammars that decide a verdict."""
    digest = hashlib.sha256(__version__.encode())
    files = sorted((_TOOL_ROOT / "verifier").rglob("*.py")) + sorted((_TOOL_ROOT / "grammar").glob("*.lark"))
    for path in files:
        digest.update(str(path.relative_to(_TOOL_ROOT)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def _content(path: Path | None) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path else "-"


def proof_key(snapshot_digest: str, config: ProveConfig) -> str:
    """The cache key of proving a snapshot under `config` (its files and paths aside: the snapshot stands for
    them)."""
    parts: dict[str, Any] = {
        "tool": tool_digest(), "inputs": snapshot_digest,
        "contracts": _content(config.contracts), "assumptions": _content(config.assumptions),
        "waivers": _content(config.waivers), "policy": _content(config.policy), "readings": list(config.readings),
        "caps": sorted(config.caps.items()), "options": asdict(config.options),
        "classes": list(config.classes),
        "confirm": [config.confirm, [list(a) if a else None for a in config.assemblers]],
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:24]


class ResultStore:
    """Slot outcomes on disk: DIR/KEY/SLOT.json, each written atomically."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def get(self, key: str, slot: str) -> SlotOutcome | None:
        path = self.root / key / f"{slot}.json"
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            return None
        try:
            return SlotOutcome(**data)
        except TypeError:  # written by another version of the format: prove again
            return None

    def put(self, key: str, outcome: SlotOutcome) -> None:
        directory = self.root / key
        directory.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{outcome.slot}.", dir=directory)
        with os.fdopen(fd, "w") as handle:
            handle.write(json.dumps(outcome.plain()))  # dumps: the C encoder (dump() encodes in Python)
        os.replace(tmp, directory / f"{outcome.slot}.json")
