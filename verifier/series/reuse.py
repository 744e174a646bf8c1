"""Results reused by what they depend on: a commit whose change reaches none of the functions a slot's paths
ran (by content, verifier.engine.image.function_digest) takes the previous commit's result for that slot; a
synchronous slot whose changed functions only some exception classes reach re-proves just those classes
(--ec) and keeps the previous result for the others.

Everything else a result depends on must be the same for either: the tool, contracts, assumptions, waivers,
policy, options, pinned capabilities and the facts of the build (layout, thread flags, capability names,
kernel version) -- `context_key`."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, replace
from typing import Any

from verifier.engine.image import Image
from verifier.kernel.snapshot import Snapshot
from verifier.proof.cache import proof_key
from verifier.proof.config import ProveConfig
from verifier.proof.contract_run import union_daif
from verifier.proof.slot import SlotOutcome, lift_all
from verifier.spec.reach import ALL


def context_key(snapshot: Snapshot, config: ProveConfig) -> str:
    """What a slot's result depends on besides the code it ran."""
    facts = {"build": snapshot.build.json(), "caps": snapshot.cap_names, "version": snapshot.version}
    parts = [proof_key("-", config), json.dumps(facts, sort_keys=True, default=str)]
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:24]


class Digests:
    """Function digests of snapshots, each snapshot lifted once."""

    def __init__(self) -> None:
        self.images: dict[str, Image] = {}

    def of(self, snapshot: Snapshot) -> Image:
        image = self.images.get(snapshot.digest)
        if image is None:
            image = self.images[snapshot.digest] = Image.link(lift_all(snapshot.files, snapshot.root))
        return image


@dataclass
class Plan:
    """What a slot of a commit needs, given the previous commit's result for it."""

    action: str  # "reuse" | "classes" | "prove"
    changed: list[str]  # functions the previous result ran whose content differs now
    classes: list[int]  # "classes": the exception classes to prove again


def plan(previous: SlotOutcome, image: Image) -> Plan:
    if not previous.depends.get("functions"):
        return Plan("prove", [], [])
    changed = [name for name, digest in previous.depends["functions"].items()
               if digest is None or image.function_digest(name) != digest]
    if not changed:
        return Plan("reuse", [], [])
    reach = previous.depends.get("classes") or {}
    if any(reach.get(name, ALL) == ALL for name in changed) or \
            any(not result["ec"] for result in previous.results):
        return Plan("prove", changed, [])
    return Plan("classes", changed, sorted({ec for name in changed for ec in reach[name]}))


def partial_config(config: ProveConfig, classes: list[int]) -> ProveConfig:
    return replace(config, classes=tuple(classes))


def with_digests(outcome: SlotOutcome, image: Image) -> SlotOutcome:
    """A proof's outcome as the series keeps it: the functions it ran by their content in `image`."""
    functions = {name: image.function_digest(name) for name in outcome.depends["ran"]}
    return replace(outcome, depends={"functions": functions, "classes": outcome.depends["classes"]})


def reused(previous: SlotOutcome, image: Image) -> SlotOutcome:
    """The previous result for a commit whose change it does not depend on."""
    depends = {**previous.depends, "functions": {n: image.function_digest(n) for n in previous.depends["functions"]}}
    stats = {**previous.stats, "reused": "all classes", "seconds": 0.0}
    return replace(previous, stats=stats, depends=depends)


def combined(previous: SlotOutcome, partial: SlotOutcome, classes: list[int], image: Image) -> SlotOutcome:
    """The previous result for the classes outside `classes`, the new proof's for those."""
    again = set(classes)
    results: list[dict[str, Any]] = []
    for result in previous.results:
        kept = [ec for ec in result["ec"] if ec not in again]
        if kept:
            results.append({**result, "ec": kept})
    results += partial.results
    names = sorted({*previous.depends["functions"], *partial.depends["ran"]})
    functions = {name: image.function_digest(name) for name in names}
    reach: dict[str, Any] = dict(previous.depends.get("classes") or {})
    for name, ecs in (partial.depends.get("classes") or {}).items():
        old = reach.get(name, [])
        reach[name] = ALL if ALL in (old, ecs) else sorted(set(old) | set(ecs))
    stats = {**partial.stats, "reused": f"all classes but {len(again)} proved again",
             # the kept classes' calls rest on contracts too: what both proofs used, and how they were called
             "contracts": sorted({*previous.stats.get("contracts", []), *partial.stats.get("contracts", [])}),
             "call_daif": _union_daif(previous.stats.get("call_daif", {}), partial.stats.get("call_daif", {})),
             "call_regs": {name: sorted({*previous.stats.get("call_regs", {}).get(name, []),
                                         *partial.stats.get("call_regs", {}).get(name, [])})
                           for name in {*previous.stats.get("call_regs", {}), *partial.stats.get("call_regs", {})}}}
    return SlotOutcome(previous.slot, results, partial.printed, stats, partial.inputs,
                       {"functions": functions, "classes": reach})


def _union_daif(a: dict[str, list[int] | None], b: dict[str, list[int] | None]) -> dict[str, list[int] | None]:
    out = dict(a)
    for name, values in b.items():
        out[name] = union_daif(out.get(name, []), values) if name in out else values
    return out
