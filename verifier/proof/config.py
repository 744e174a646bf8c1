"""How to prove: the inputs, what the proofs rest on (contracts, assumptions, waivers, a policy), pinned
capabilities, the vector slots and the explorer's bounds. Plain data: it crosses process boundaries."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from verifier.engine.explore import Options
from verifier.spec.contracts import BuildFacts
from verifier.spec.slots import ALL_SLOTS, Slot
from verifier.util.errors import UserError
from verifier.util.paths import PROOFS, ROOT

DEFAULT_ASSUMPTIONS = PROOFS / "assumptions.toml"
DEFAULT_WAIVERS = PROOFS / "waivers.toml"
BUNDLED_CONTRACTS = PROOFS / "contracts" / "bundled.toml"
BUNDLED_SUBJECTS = sorted((ROOT / "asm").glob("*.s"))
BUNDLED_CALLEES = sorted((ROOT / "asm" / "callees").glob("*.s"))  # the code of the functions they call


@dataclass
class ProveConfig:
    files: list[Path]
    contracts: Path = BUNDLED_CONTRACTS
    assumptions: Path = DEFAULT_ASSUMPTIONS
    waivers: Path | None = DEFAULT_WAIVERS
    caps: dict[int, bool] = field(default_factory=dict)  # pinned capabilities
    cap_names: dict[int, str] = field(default_factory=dict)
    slots: tuple[Slot, ...] = ALL_SLOTS
    classes: tuple[int, ...] = ()  # only these exception classes (ESR_EL1.EC) of synchronous slots; () all
    options: Options = field(default_factory=Options)
    build: BuildFacts = field(default_factory=BuildFacts)  # what the kernel's build says (overrides contracts)
    root: str | None = None  # kernel tree, for source paths
    policy: Path | None = None  # a policy whose rules are checked besides the obligations
    readings: tuple[str, ...] = ()  # non-default readings of the policy's open points, by rule id
    sources: str | None = None  # where to read source text (default: root); a snapshot of the tree's files
    # contract checking: the callee ring's assembly (the files defining the functions the inputs call), why
    # some callees have no code there, how deep callees' own callees are checked (0: no checking, every
    # contract trusted as the standing assumptions print)
    callees: list[Path] = field(default_factory=list)
    callee_missing: dict[str, str] = field(default_factory=dict)
    contract_depth: int = 0
    # lifted functions summarised by their contracts all the same: those of a callee file that joined `files`
    # only so that another function of it is followed (its contract was found false)
    summarised: tuple[str, ...] = ()
    # counterexamples confirmed on Unicorn from the assembler's objects (confirm), with the assembler command
    # per input (None: GNU as)
    assemblers: list[tuple[str, ...] | None] = field(default_factory=list)
    confirm: bool = False
    # record what each slot's result depends on (SlotOutcome.depends): a series reuses results by it; ~6% of
    # 7.3's el0_64_sync, so only where something reads it
    record_depends: bool = False
    # contract checks kept between runs (verifier.proof.check_store) and read back when nothing they read
    # changed; False: every contract is checked again (the benchmark's cold runs)
    keep_checks: bool = True


def parse_caps(specs: list[str], names: dict[int, str]) -> dict[int, bool]:
    """`--cap NAME=on|off` pins, by capability name (with or without ARM64_) or number."""
    by_name = {name: number for number, name in names.items()}
    pins: dict[int, bool] = {}
    for spec in specs:
        m = re.fullmatch(r"([A-Za-z0-9_]+)=(on|off)", spec)
        if not m:
            raise UserError(f"--cap {spec}: expected NAME=on|off")
        name = m.group(1)
        number = int(name) if name.isdigit() else by_name.get(name, by_name.get(f"ARM64_{name}"))
        if number is None:
            hint = "" if names else " (capability names come from the kernel build; use the number here)"
            raise UserError(f"--cap {spec}: unknown capability '{name}'{hint}")
        pins[number] = m.group(2) == "on"
    return pins
