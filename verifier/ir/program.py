"""The one intermediate representation both front ends produce.

A lifted file is a set of sections; each section holds addressed items: instructions (mnemonic plus
resolved operands), data and undecodable words. Operands are small frozen dataclasses so that two lifts can
be compared with `==`. Anything the assembler would leave to the linker stays symbolic (`SymRef`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

# ----------------------------------------------------------------------------------------------- locations


@dataclass(frozen=True)
class SrcLoc:
    """Where an item came from: the `.s` line, the original file/line, and the macro-expansion stack."""

    asm_file: str
    asm_line: int
    file: str | None = None  # original source (.S / .c / .h) through cpp markers or verbose-asm comments
    line: int | None = None
    macros: tuple[tuple[str, str], ...] = ()  # (macro name, its call site `file:line`), outermost first

    def short(self) -> str:
        where = f"{self.file}:{self.line}" if self.file else f"{self.asm_file}:{self.asm_line}"
        if self.macros:
            where += " (in " + " <- ".join(name for name, _ in reversed(self.macros)) + ")"
        return where


# ------------------------------------------------------------------------------------------------ operands


@dataclass(frozen=True)
class Reg:
    name: str  # canonical lower case: x0..x30, w0..w30, sp, wsp, xzr, wzr, v0.., q0.., etc.

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True)
class Imm:
    value: int

    def __str__(self) -> str:
        return f"#{self.value:#x}" if abs(self.value) > 9 else f"#{self.value}"


@dataclass(frozen=True)
class FImm:
    value: float

    def __str__(self) -> str:
        return f"#{self.value}"


@dataclass(frozen=True)
class Loc:
    """A resolved address: an offset in a section of this file."""

    section: str
    offset: int

    def __str__(self) -> str:
        return f"{self.section}+{self.offset:#x}"


@dataclass(frozen=True)
class SymRef:
    """A reference the assembler leaves to the linker: symbol + addend."""

    symbol: str
    addend: int = 0

    def __str__(self) -> str:
        if self.addend:
            return f"{self.symbol}{self.addend:+#x}"
        return self.symbol


Target = Loc | SymRef


@dataclass(frozen=True)
class Addr:
    """A PC-relative code or data address operand (branch targets, adr, literal loads)."""

    target: Target

    def __str__(self) -> str:
        return f"<{self.target}>"


@dataclass(frozen=True)
class Reloc:
    """A relocated immediate: `kind` is `page` (adrp), `lo12`, `lo12_nc`, `abs_g0`..`abs_g3` and
    their `_nc`/`_s` variants, `got_lo12`, ...; as written after the colon in GNU as syntax."""

    kind: str
    target: Target

    def __str__(self) -> str:
        return f":{self.kind}:{self.target}"


@dataclass(frozen=True)
class Shifted:
    """An operand with a shift or extend: `x2, lsl #3`, `w1, uxtw #2`, `#0x1234, lsl #16`."""

    base: Operand
    kind: str  # lsl lsr asr ror msl uxtb uxth uxtw uxtx sxtb sxth sxtw sxtx
    amount: int | None

    def __str__(self) -> str:
        return f"{self.base}, {self.kind}" + (f" #{self.amount}" if self.amount is not None else "")


@dataclass(frozen=True)
class Mem:
    """A memory operand. mode: `offset` ([b, off]), `pre` ([b, off]!), `post` ([b], off)."""

    base: Reg
    offset: Operand | None = None  # Imm, Reg, Shifted(Reg), Reloc
    mode: str = "offset"

    def __str__(self) -> str:
        if self.mode == "post":
            return f"[{self.base}], {self.offset}"
        inner = str(self.base) if self.offset is None else f"{self.base}, {self.offset}"
        return f"[{inner}]" + ("!" if self.mode == "pre" else "")


@dataclass(frozen=True)
class SysReg:
    """A system register by its encoding op0:op1:CRn:CRm:op2 packed as in the MRS/MSR instruction."""

    encoding: int
    name: str = field(default="", compare=False)

    def __str__(self) -> str:
        if self.name:
            return self.name
        e = self.encoding
        return f"s{(e >> 14) & 3}_{(e >> 11) & 7}_c{(e >> 7) & 15}_c{(e >> 3) & 15}_{e & 7}"


@dataclass(frozen=True)
class Name:
    """A keyword operand: PSTATE field (daifset), barrier option (ish), tlbi/dc/at op, bti target,
    prefetch op, condition code (for csel/ccmp), `c7` for sys."""

    name: str

    def __str__(self) -> str:
        return self.name


class UnresolvedOperand:
    """A front end's stand-in for an operand it can compute only after layout (a label, `.`, a symbol defined
    further on); the front end's subclass holds the expression, which the IR does not look into. Never in a
    finished Program: the front end replaces each by the Imm, Addr or Reloc it stands for."""

    __slots__ = ()


Operand = Reg | Imm | FImm | Addr | Reloc | Shifted | Mem | SysReg | Name | UnresolvedOperand


# ---------------------------------------------------------------------------------------------------- items


@dataclass(frozen=True)
class Insn:
    mnemonic: str  # lower case, with condition: `b.ne`
    operands: tuple[Operand, ...]

    def __str__(self) -> str:
        return f"{self.mnemonic} " + ", ".join(str(o) for o in self.operands) if self.operands else self.mnemonic


@dataclass
class Item:
    """One addressed thing in a section: an instruction, data, or an undecodable word."""

    offset: int
    size: int
    kind: str  # "insn" | "data" | "undecoded"
    insn: Insn | None = None
    data: tuple[DataValue, ...] = ()
    raw: bytes | None = None  # bytes when known (data with constant values, .inst words)
    reason: str = ""  # kind "undecoded": why the bytes are not an instruction the IR represents
    src: SrcLoc | None = None


@dataclass(frozen=True)
class DataValue:
    """A data field of `size` bytes: a constant, or target (+ addend) optionally relative to its own address."""

    size: int
    value: int = 0
    target: Target | None = None
    pcrel: bool = False  # value = target - address of this field (`.word 661b - .`)


@dataclass
class Section:
    name: str
    flags: str = ""
    items: list[Item] = field(default_factory=list)
    size: int = 0

    def instructions(self) -> list[Item]:
        return [it for it in self.items if it.kind != "data"]


@dataclass(frozen=True)
class AlternativeSite:
    """One `.altinstructions` record: the original range is patched with the replacement when the CPU
    has capability `cap` (or, for `alternative_cb`, `callback` rewrites it at boot)."""

    orig: Loc
    orig_len: int
    repl: Loc | None
    repl_len: int
    cap: int
    callback: str | None = None
    src: SrcLoc | None = None


@dataclass
class Symbol:
    name: str
    loc: Loc | None  # None: undefined here
    binding: str = "local"  # local | global | weak
    kind: str = ""  # function | object | ""
    size: int | None = None


@dataclass
class Program:
    """A lifted file."""

    path: str
    sections: dict[str, Section] = field(default_factory=dict)
    symbols: dict[str, Symbol] = field(default_factory=dict)
    alternatives: list[AlternativeSite] = field(default_factory=list)
    source_root: str | None = None  # the tree the original sources are relative to, when known

    def code_sections(self) -> list[Section]:
        return [s for s in self.sections.values() if any(it.kind != "data" for it in s.items)]
