"""A commit's lifted inputs, frozen: the `.s` files Kbuild made, the C sources they name (the prover reads
function names from them), what the build says of itself (verifier.kernel.info: layout, thread flags,
aliases), the capability names and the kernel version.

A series run checks out one commit after another in the same scratch tree and build dir; a snapshot keeps a
commit's inputs after the next checkout replaces them, so its proof can run later, in another process.
Snapshots are content addressed: the digest covers everything a proof reads from the build, with the scratch
tree's and build dir's own paths factored out, so two commits with the same lifted assembly share one."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from verifier.frontend.reader import dwarf_file
from verifier.kernel.info import kernel_info
from verifier.kernel.kbuild import BuiltRing
from verifier.spec.contracts import BuildFacts

# Where a `.s` names a source file: cpp line markers (`# 12 "/tree/x.S"`), gcc -fverbose-asm comments
# (`// /tree/x.c:42: ...`) and the line tables' `.file` (`.file 1 "/dir" "rel/x.c" md5 ...`, clang).
_NAMED = re.compile(r'^(?:# \d+ "([^"]+)"|// (/[^:\s]+):\d+:)', re.MULTILINE)
_FILE_DIRECTIVE = re.compile(r"^\s*\.file\s+(.*)$", re.MULTILINE)


def _named_paths(text: str) -> set[str]:
    found = {m.group(1) or m.group(2) for m in _NAMED.finditer(text)}
    found |= {named[1] for m in _FILE_DIRECTIVE.finditer(text) if (named := dwarf_file(m.group(1)))}
    return {path for path in found if path}


@dataclass
class Snapshot:
    digest: str
    dir: Path
    files: list[Path]  # the .s files, in the order Kbuild made them
    root: str  # the tree path the .s files name (source paths are shown relative to it)
    build: BuildFacts
    cap_names: dict[int, str]
    version: str
    # the callee ring's assembly (contract checking), under ring/ by its path in the build dir, and why some
    # callees have none
    callees: list[Path] = field(default_factory=list)
    callee_missing: dict[str, str] = field(default_factory=dict)

    @property
    def sources(self) -> Path:
        return self.dir / "src"


def _normalised(text: str, tree: str, build: str) -> bytes:
    return text.replace(tree.rstrip("/") + "/", "$TREE/").replace(build.rstrip("/") + "/", "$BUILD/").encode()


def _named_c_sources(texts: list[str], tree: str) -> list[str]:
    """The C files under the tree the assembly names, relative to the tree."""
    prefix = tree.rstrip("/") + "/"
    found = {path for text in texts for path in _named_paths(text)}
    return sorted(p[len(prefix):] for p in found if p.startswith(prefix) and p.endswith(".c"))


def take(store: Path, tree: Path, build_dir: Path, files: list[Path], ring: BuiltRing | None = None) -> Snapshot:
    """Snapshot the inputs just built (reusing an identical snapshot), with the callee ring's assembly when
    contracts are checked."""
    tree_s, build_s = str(tree.resolve()), str(build_dir.resolve())
    texts = [f.read_text(errors="replace") for f in files]
    ring_rel = [path.resolve().relative_to(build_dir.resolve()) for path in (ring.outputs if ring else [])]
    info = kernel_info(tree, build_dir)
    sources = _named_c_sources(texts, tree_s)
    digest = hashlib.sha256()
    for path, text in zip(files, texts, strict=True):
        digest.update(f"{path.name}\0".encode() + _normalised(text, tree_s, build_s) + b"\0")
    for rel in sources:
        digest.update(f"src {rel}\0".encode() + (tree / rel).read_bytes() + b"\0")
    for assembly in ring_rel:
        digest.update(f"ring {assembly}\0".encode() + _normalised((build_dir / assembly).read_text(errors="replace"),
                                                                    tree_s, build_s) + b"\0")
    meta = {"build": info.facts().json(), "cap_names": {str(k): v for k, v in sorted(info.cap_names.items())},
            "version": info.version, "ring": [str(assembly) for assembly in ring_rel],
            "ring_missing": dict(ring.missing if ring else {})}
    digest.update(json.dumps(meta, sort_keys=True).encode())
    key = digest.hexdigest()[:24]
    target = store / key
    if not (target / "meta.json").is_file():
        store.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{key}.", dir=store))
        for path in files:
            shutil.copyfile(path, tmp / path.name)
        for rel in sources:
            (tmp / "src" / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(tree / rel, tmp / "src" / rel)
        for assembly in ring_rel:
            (tmp / "ring" / assembly).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(build_dir / assembly, tmp / "ring" / assembly)
        meta |= {"files": [f.name for f in files], "root": tree_s}
        (tmp / "meta.json").write_text(json.dumps(meta, indent=1) + "\n")
        try:
            os.rename(tmp, target)
        except OSError:  # another run made the same snapshot meanwhile
            shutil.rmtree(tmp, ignore_errors=True)
    return load(store, key)


def load(store: Path, key: str) -> Snapshot:
    target = store / key
    meta = json.loads((target / "meta.json").read_text())
    caps = {int(k): v for k, v in meta["cap_names"].items()}
    return Snapshot(key, target, [target / name for name in meta["files"]], meta["root"],
                    BuildFacts.from_json(meta["build"]), caps, meta["version"],
                    [target / "ring" / rel for rel in meta.get("ring", [])], dict(meta.get("ring_missing", {})))
