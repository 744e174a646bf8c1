"""Contracts: what a function the engine does not lift may do, read from a TOML file in proofs/contracts/.

A contract says whether the function returns, which registers it may change (AAPCS64 by default), what
it leaves in DAIF and MDSCR_EL1, which exceptions it may unmask while it runs, and which memory it may
write. Every contract a result rests on is printed with it; the `[default]` one applies to any function
without its own entry, and that is printed too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from pathlib import Path

from verifier.engine.calls import PatchedWord, Variant
from verifier.frontend.decode import decode_word
from verifier.ir.program import Insn
from verifier.spec.priority import PriorityFacts
from verifier.spec.versions import version_in
from verifier.util.errors import UserError
from verifier.util.files import read_toml

AAPCS_CLOBBERS = tuple(f"x{i}" for i in range(19)) + ("x30",)
MEMORY_CLASSES = ("regs.gprs", "regs.sp", "regs.pc", "regs.pstate", "regs.rest", "task", "percpu", "global")
# The fields of a saved PSTATE (SPSR_EL1's layout) a contract may let a function change, as masks: BTYPE is two
# bits (11:10); IT is an AArch32 task's if-then state, IT[1:0] in bits 26:25 and IT[7:2] in bits 15:10
# (arch/arm64/include/uapi/asm/ptrace.h: PSR_BTYPE_MASK, PSR_AA32_IT_MASK).
PSTATE_BITS = {"N": 1 << 31, "Z": 1 << 30, "C": 1 << 29, "V": 1 << 28, "SS": 1 << 21, "IL": 1 << 20, "D": 1 << 9,
               "A": 1 << 8, "I": 1 << 7, "F": 1 << 6, "PAN": 1 << 22, "DIT": 1 << 24, "TCO": 1 << 25,
               "SSBS": 1 << 12, "BTYPE": 0b11 << 10, "IT": 0x0600FC00}
DAIF_RETURNS = ("preserved", "masked", "any")
UNMASKS = ("none", "preserved", "all")
# ICC_PMR_EL1 on return: as at the call, anything, or, where the kernel masks interrupts with PMR, possibly
# masking normal interrupts: with PSTATE.I and F cleared as the GIC driver's gic_unmask_pnmis() leaves them
# ("unmask-pnmis"), or with DAIF as at the call as local_irq_disable() leaves it ("irqs-off"); either way
# the return the `daif` field gives is possible too
PMR_RETURNS = ("preserved", "any", "unmask-pnmis", "irqs-off")


@dataclass(frozen=True)
class Contract:
    name: str
    returns: bool = True
    clobbers: tuple[str, ...] = AAPCS_CLOBBERS
    daif: str = "preserved"  # preserved | masked | any | 0bDAIF (a bit x: as at the call); "a|b": either
    mdscr: str = "preserved"  # preserved | any
    pmr: str = "preserved"  # PMR_RETURNS
    unmasks: str = "preserved"  # none | preserved (only what DAIF at the call allows) | all
    writes: tuple[str, ...] = MEMORY_CLASSES
    pstate_bits: tuple[str, ...] = ("N", "Z", "C", "V")  # bits of regs.pstate it may change
    note: str = ""
    is_default: bool = False
    lift: bool = True  # False: summarise by this contract even where the code is lifted (a loop the engine
    #                    would only unroll to its bound)
    # `daif = "derived"`: DAIF on return is read from the function's code before the proofs (every DAIF at the
    # call, to every return); `daif` is the written fallback until then (its `fallback_daif`, else any)
    derive: bool = False
    derived_from: str = ""  # the file it was derived from, once it was
    daif_table: tuple[tuple[int, tuple[int, ...]], ...] = ()  # derived: DAIF at the call -> DAIF on return

    def with_derived_daif(self, table: dict[int, tuple[int, ...]], text: str, source: str) -> Contract:
        return replace(self, daif=text, daif_table=tuple(sorted(table.items())), derived_from=source)

    def describe(self) -> str:
        parts = [f"contract {self.name}" + (" (default)" if self.is_default else "") + ":"]
        parts.append("returns" if self.returns else "does not return")
        if self.returns:
            daif = self.daif
            if self.derived_from:
                daif = f"derived from its code ({self.derived_from}): {self.daif}"
            elif self.derive:
                daif = f"{self.daif} (written fallback: not derived from its code)"
            parts.append(f"DAIF on return {daif}; MDSCR_EL1 {self.mdscr}; may unmask {self.unmasks}")
            if self.pmr != "preserved":
                parts.append(f"ICC_PMR_EL1 on return {self.pmr};")
            parts.append("writes " + ", ".join(self.writes) + f"; pt_regs.pstate bits {' '.join(self.pstate_bits)}")
        if not self.lift:
            parts.append("(used instead of the lifted code)")
        if self.note:
            parts.append(self.note)
        return " ".join(parts)


@dataclass(frozen=True)
class Callback:
    """An `alternative_cb` callback: what the boot-time patching may put at the site."""

    name: str
    patches: str  # "nops" | "registers" | "derived"
    registers: tuple[str, ...] = ()
    note: str = ""
    # read from its code (proof/callback_derive.py): per site length, the words it can leave there (None:
    # the original instruction stays)
    derived: dict[int, tuple[tuple[int | None, ...], ...]] = field(default_factory=dict)
    source: str = ""

    @property
    def fresh_registers(self) -> tuple[str, ...]:
        return self.registers if self.patches == "registers" else ()

    def describe(self) -> str:
        if self.derived:
            return f"callback {self.name}: {describe_variants(self.derived)} (read from its code in {self.source})"
        return f"callback {self.name}: patches {self.patches}"

    def variants(self, length: int) -> tuple[Variant, ...] | None:
        known = self.derived.get(length)
        if known is None:
            return None
        return tuple(tuple(None if word is None else PatchedWord(word, _decoded(word)) for word in words)
                     for words in known)

    def with_derived(self, derived: dict[int, tuple[tuple[int | None, ...], ...]], source: str) -> Callback:
        return replace(self, patches="derived", derived=derived, source=source)


def _decoded(word: int) -> Insn:
    insn = decode_word(word, ".text", 0)
    if insn is None:  # the derivation keeps only words that decode
        raise ValueError(f"{word:#010x} does not decode")
    return insn


def describe_variants(derived: dict[int, tuple[tuple[int | None, ...], ...]]) -> str:
    """`leaves the site as it was, or writes nop` and the like, per site length."""
    parts = []
    for length, variants in sorted(derived.items()):
        shown = []
        for words in variants:
            if all(word is None for word in words):
                shown.append("leaves it as it was")
            else:
                shown.append("writes " + "; ".join("(kept)" if w is None else str(_decoded(w)) for w in words))
        parts.append(f"at a site of {length} instruction(s): " + ", or ".join(shown))
    return "; ".join(parts)


LAYOUT_KEYS = ("TSK_TI_FLAGS", "S_PC", "S_PSTATE", "S_FRAME_SIZE")


@dataclass
class BuildFacts:
    """What a kernel's build says about itself (asm-offsets, generated headers, a probe compiled with its
    flags): facts a contracts file would otherwise have to state per version. They override the file's."""

    version: str = ""  # "7.3.4": which contracts and role bindings apply
    layout: dict[str, int] = field(default_factory=dict)  # LAYOUT_KEYS, from asm-offsets.h
    tif: dict[str, int] = field(default_factory=dict)  # TIF_* bits
    aliases: dict[str, int] = field(default_factory=dict)  # section -> the other address it is mapped at
    derived: tuple[str, ...] = ()  # what was derived from where, and which defaults applied (printed)
    options: frozenset[str] | None = None  # the Kconfig options set (y or m); None: no configuration known
    priority: PriorityFacts = field(default_factory=PriorityFacts)  # GIC priority masking (pseudo-NMI)
    # contracts whose DAIF on return was derived from the callee's code (`daif = "derived"`):
    # function -> {"table": [[DAIF at the call, [DAIF on return, ...]], ...], "text": ..., "source": ...}
    derived_daif: dict[str, dict] = field(default_factory=dict)
    # alternative_cb callbacks whose effect was read from their code: callback -> {"variants": [[site length,
    # [[word or None, ...], ...]], ...], "source": ...}
    derived_patches: dict[str, dict] = field(default_factory=dict)

    def json(self) -> dict[str, object]:
        return {"version": self.version, "layout": self.layout, "tif": self.tif, "aliases": self.aliases,
                "derived": list(self.derived), "options": None if self.options is None else sorted(self.options),
                "priority": self.priority.json(), "derived_daif": self.derived_daif,
                "derived_patches": self.derived_patches}

    @classmethod
    def from_json(cls, data: dict | None) -> BuildFacts:
        data = data or {}
        options = data.get("options")
        return cls(str(data.get("version", "")), dict(data.get("layout", {})), dict(data.get("tif", {})),
                   dict(data.get("aliases", {})), tuple(data.get("derived", ())),
                   None if options is None else frozenset(options), PriorityFacts.from_json(data.get("priority")),
                   dict(data.get("derived_daif", {})), dict(data.get("derived_patches", {})))


@dataclass
class Contracts:
    path: str
    family: str
    layout: dict[str, int]
    tif: dict[str, int]
    aliases: dict[str, int]
    default: Contract
    functions: dict[str, Contract] = field(default_factory=dict)
    indirect: dict[str, Contract] = field(default_factory=dict)  # by the symbol the pointer is loaded from
    callbacks: dict[str, Callback] = field(default_factory=dict)
    firmware: Contract | None = None
    noreturn_patterns: tuple[str, ...] = ()
    percpu_current: str | None = None  # the per-CPU variable that holds the current task at EL0 entry
    applies: str = ""  # the versions of the family this file is for (">= 5.10"); "" for any
    build: BuildFacts = field(default_factory=BuildFacts)
    # functions whose code is lifted but that are summarised by their contracts anyway: the others of a file
    # that joined the inputs so that one function of it is followed (proof/run.py)
    summarised: frozenset[str] = frozenset()

    def with_build(self, build: BuildFacts) -> Contracts:
        """These contracts with the build's facts in place of the file's, checked for what the proofs need."""
        self.build = build
        self.layout.update(build.layout)
        self.tif.update(build.tif)
        self.aliases.update(build.aliases)
        missing = [key for key in LAYOUT_KEYS if key not in self.layout]
        if missing:
            raise UserError(f"neither the build (asm-offsets.h) nor the contracts give {', '.join(missing)}",
                            self.path)
        if "TIF_SINGLESTEP" not in self.tif:
            raise UserError("neither the build (thread_info.h) nor the contracts give TIF_SINGLESTEP", self.path)
        for name, patched in build.derived_patches.items():
            variants = {int(length): tuple(tuple(words) for words in known) for length, known in patched["variants"]}
            base = self.callbacks.get(name) or Callback(name, "derived")
            self.callbacks[name] = base.with_derived(variants, str(patched.get("source", "")))
        for name, derived in build.derived_daif.items():
            if name in self.functions:
                table = {int(at_call): tuple(returns) for at_call, returns in derived["table"]}
                self.functions[name] = self.functions[name].with_derived_daif(table, derived["text"],
                                                                              derived["source"])
        return self

    def for_function(self, name: str) -> Contract:
        if name in self.functions:
            return self.functions[name]
        for pattern in self.noreturn_patterns:
            if re.fullmatch(pattern, name):
                return Contract(name, returns=False, note=f"matches noreturn pattern {pattern}")
        return self.default


def _contract(name: str, table: dict, base: Contract, where: str, default: bool = False) -> Contract:
    known = {"returns", "clobbers", "daif", "fallback_daif", "mdscr", "pmr", "unmasks", "writes", "pstate_bits",
             "note", "lift"}
    unknown = set(table) - known
    if unknown:
        raise UserError(
            f"contract {name}: unknown key(s) {', '.join(sorted(unknown))} (known: {', '.join(sorted(known))})", where
        )
    clobbers = table.get("clobbers", base.clobbers)
    if clobbers == "aapcs64":
        clobbers = AAPCS_CLOBBERS
    writes = tuple(table.get("writes", base.writes))
    for cls in writes:
        if cls not in MEMORY_CLASSES:
            raise UserError(f"contract {name}: unknown memory class '{cls}' (known: {', '.join(MEMORY_CLASSES)})",
                            where)
    daif = str(table.get("daif", base.daif))
    derive = daif == "derived"
    if derive and default:
        raise UserError("contract default: daif = \"derived\" needs a function's code; derive it per function",
                        where)
    if derive:
        daif = str(table.get("fallback_daif", "any"))
    elif "fallback_daif" in table:
        raise UserError(f"contract {name}: fallback_daif applies only with daif = \"derived\"", where)
    for choice in daif.split("|"):
        if choice not in DAIF_RETURNS and not re.fullmatch(r"0b[01x]{4}", choice):
            raise UserError(f"contract {name}: daif must be one of {', '.join(DAIF_RETURNS)} or 0bDAIF "
                            "(each bit 0, 1 or x: as at the call), or several joined by | (any one of them), "
                            "or \"derived\" (from the function's code; fallback_daif where it cannot be)", where)
    unmasks = str(table.get("unmasks", base.unmasks))
    if unmasks not in UNMASKS:
        raise UserError(f"contract {name}: unmasks must be one of {', '.join(UNMASKS)}", where)
    pmr = str(table.get("pmr", base.pmr))
    if pmr not in PMR_RETURNS:
        raise UserError(f"contract {name}: pmr must be one of {', '.join(PMR_RETURNS)}", where)
    bits = tuple(table.get("pstate_bits", base.pstate_bits))
    for bit in bits:
        if bit not in PSTATE_BITS:
            raise UserError(f"contract {name}: unknown pstate bit '{bit}'", where)
    return Contract(
        name=name,
        returns=bool(table.get("returns", base.returns)),
        clobbers=tuple(clobbers),
        daif=daif,
        mdscr=str(table.get("mdscr", base.mdscr)),
        pmr=pmr,
        unmasks=unmasks,
        writes=writes,
        pstate_bits=bits,
        note=str(table.get("note", "")),
        is_default=default,
        lift=bool(table.get("lift", True)),
        derive=derive,
    )


def load_contracts(path: str | Path, build: BuildFacts | None = None) -> Contracts:
    """A contracts file, with the facts of the kernel's build (if any) in place of the file's own."""
    path = Path(path)
    data, _ = read_toml(path, "contracts")
    where = str(path)
    default = _contract("default", data.get("default", {}), Contract("default"), where, default=True)
    contracts = Contracts(
        path=where,
        family=str(data.get("family", path.stem)),
        layout={k: int(v) for k, v in data.get("layout", {}).items() if k != "tif"},
        tif={k: int(v) for k, v in data.get("layout", {}).get("tif", {}).items()},
        aliases={k: int(v) for k, v in data.get("aliases", {}).items()},
        default=default,
        noreturn_patterns=tuple(data.get("noreturn_patterns", [])),
        percpu_current=data.get("current", {}).get("percpu"),
        applies=str(data.get("applies", "")),
    )
    try:
        version_in("0", contracts.applies)
    except ValueError as err:
        raise UserError(f"applies: {err}", where) from None
    for name, table in data.get("function", {}).items():
        contracts.functions[name] = _contract(name, table, default, where)
    for name, table in data.get("indirect", {}).items():
        contracts.indirect[name] = _contract(f"*{name}", table, default, where)
    if "firmware" in data:
        contracts.firmware = _contract("firmware call (hvc/smc)", data["firmware"], default, where)
    for name, table in data.get("callback", {}).items():
        patches = table.get("patches")
        if patches not in ("nops", "registers"):
            raise UserError(f"callback {name}: patches must be 'nops' or 'registers'", where)
        registers = tuple(table.get("registers", ()))
        contracts.callbacks[name] = Callback(name, patches, registers, str(table.get("note", "")))
    return contracts.with_build(build or BuildFacts())
