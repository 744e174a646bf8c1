"""Contract checks kept between runs by what they read: a check is taken again from the cache only when
everything it depends on is the same -- the tool, the function's name, contract and precondition (the DAIF
its calls reach it with, the registers they pass pt_regs in), the depth, the source it was built from, every
contract and build fact the check's summaries could use, the options -- and each function its paths ran has
the same content now
(`Image.function_digest`: instructions, source lines, alternatives and the data they reference). A kernel
re-proved after an edit to entry.S checks again only the contracts whose code changed; the callee ring's
checks (half of a full proof's time) are otherwise read back.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from verifier.engine.image import Image
from verifier.proof.cache import tool_digest
from verifier.spec.contracts import BuildFacts, Contracts
from verifier.util.paths import cache_root

KEEP = 4096  # checks kept; the oldest go first


def contracts_digest(contracts: Contracts) -> str:
    """Every contract and build fact, in a stable text (the build's option set sorted)."""
    text = json.dumps([asdict(replace(contracts, build=BuildFacts())), contracts.build.json()],
                      sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def check_key(**parts: Any) -> str:
    """The cache key of one check: the tool and the given parts (JSON-able)."""
    text = json.dumps({"tool": tool_digest(), **parts}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


@dataclass(frozen=True)
class Kept:
    check: dict[str, Any]  # ContractCheck.json(), or a derivation: {"derived": function, "table", "text", "source"}
    nested: dict[str, list[int] | None]  # its callees and the DAIF its calls reach them with
    nested_regs: dict[str, list[int]] = field(default_factory=dict)  # and the registers they pass pt_regs in


class CheckStore:
    """Checks on disk, one JSON file per key, each with the digests of the functions its paths ran."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = root or cache_root() / "checks"
        self.pruned = False

    def get(self, key: str, image: Image) -> Kept | None:
        path = self.root / f"{key}.json"
        try:
            data = json.loads(path.read_text())
            functions: dict[str, str] = data["functions"]
            kept = Kept(data["check"], data["nested"], data.get("nested_regs", {}))
        except (OSError, ValueError, KeyError, TypeError):
            return None
        if not functions or any(image.function_digest(name) != digest for name, digest in functions.items()):
            return None
        os.utime(path)
        return kept

    def put(self, key: str, kept: Kept, image: Image, functions: set[str]) -> None:
        digests = {name: image.function_digest(name) for name in sorted(functions)}
        if not digests or None in digests.values():  # a path ran code no function holds: nothing to compare
            return
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".check.", dir=self.root)
            with os.fdopen(fd, "w") as handle:
                handle.write(json.dumps({"check": kept.check, "nested": kept.nested, "nested_regs": kept.nested_regs,
                                        "functions": digests}))
            os.replace(tmp, self.root / f"{key}.json")
            if not self.pruned:  # once per run: the oldest beyond KEEP go
                self.pruned = True
                entries = sorted(self.root.glob("*.json"), key=lambda p: p.stat().st_mtime)
                for old in entries[:-KEEP]:
                    old.unlink(missing_ok=True)
        except OSError:  # a cache that cannot be written only costs time
            return
