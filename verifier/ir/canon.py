"""One alias normalisation for both front ends: every instruction to its base form.

Gas accepts many spellings of one encoding (`cmp` for `subs zr`, `lsl #3` for `ubfm`, `bti c` for
`hint #34`) and capstone prints its own preferred alias, so the two lifts only compare equal after both go
through `canonical`. The base forms are also what a symbolic engine needs to give semantics to: the
few aliases kept (`mov rd, #value` for every way to load a constant) are chosen because they are simpler.
The table is driven by what the kernel's entry code and gcc's output for it actually use.
"""

from __future__ import annotations

from typing import TypeGuard

from verifier.ir.program import Imm, Insn, Loc, Mem, Name, Operand, Reg, Reloc, Shifted, Target

_MASK = {32: 0xFFFF_FFFF, 64: 0xFFFF_FFFF_FFFF_FFFF}

# ------------------------------------------------------------------------------------------- registers


def reg_width(reg: Reg) -> int | None:
    """32 or 64 for general-purpose registers, None otherwise (vector registers, ...)."""
    name = reg.name
    if name in ("sp", "xzr") or (name[:1] == "x" and name[1:].isdigit()):
        return 64
    if name in ("wsp", "wzr") or (name[:1] == "w" and name[1:].isdigit()):
        return 32
    return None


def _zr(width: int) -> Reg:
    return Reg("xzr" if width == 64 else "wzr")


def _as_width(reg: Reg, width: int) -> Reg:
    """The same register number at another width (`w1` -> `x1`)."""
    name = reg.name
    if name in ("sp", "wsp"):
        return Reg("sp" if width == 64 else "wsp")
    if name in ("xzr", "wzr"):
        return _zr(width)
    return Reg(("x" if width == 64 else "w") + name[1:])


def _is_vector(op: Operand) -> TypeGuard[Reg]:
    """A SIMD&FP (`v0.16b`), SVE vector (`z0.d`) or predicate (`p0.b`) register with its arrangement."""
    return isinstance(op, Reg) and "." in op.name


def _is_sp(op: Operand) -> bool:
    return isinstance(op, Reg) and op.name in ("sp", "wsp")


def _width_of(ops: tuple[Operand, ...]) -> int:
    """The operation width: from the destination register (first operand)."""
    if ops and isinstance(ops[0], Reg):
        width = reg_width(ops[0])
        if width is not None:
            return width
    return 64


# ------------------------------------------------------------------------------------------ conditions

_COND_ALIAS = {"cs": "hs", "cc": "lo"}  # capstone prints hs/lo
_INVERT = {
    "eq": "ne", "ne": "eq", "hs": "lo", "lo": "hs", "mi": "pl", "pl": "mi", "vs": "vc", "vc": "vs",
    "hi": "ls", "ls": "hi", "ge": "lt", "lt": "ge", "gt": "le", "le": "gt", "al": "nv", "nv": "al",
}
_CONDS = set(_INVERT) | set(_COND_ALIAS)


def _cond(name: str) -> str:
    return _COND_ALIAS.get(name, name)


# ---------------------------------------------------------------------------------------- immediates


def _constant_target(target: Target) -> int | None:
    """The value of a relocation target that is a constant: how the assembler side spells `:abs_g1:0x1234`."""
    return target.offset if isinstance(target, Loc) and target.section == "*ABS*" else None


def _imm(op: Operand) -> int | None:
    return op.value if isinstance(op, Imm) else None


def _imm_shifted(op: Operand) -> int | None:
    """`#v` or `#v, lsl #s` as one value."""
    if isinstance(op, Shifted) and op.kind == "lsl" and isinstance(op.base, Imm):
        base = _imm(op.base)
        return None if base is None else base << (op.amount or 0)
    return _imm(op)


# ------------------------------------------------------------------------------------- operand cleanup

_EXTENDS = {"uxtb", "uxth", "uxtw", "uxtx", "sxtb", "sxth", "sxtw", "sxtx"}
_ADD_SUB = {"add", "adds", "sub", "subs", "cmp", "cmn"}


def _clean_shift(op: Shifted, width: int | None) -> Operand:
    base = _clean(op.base)
    kind, amount = op.kind, op.amount
    if kind in _EXTENDS:
        # Extending a register to the width it already has is a plain shift: `add x0, sp, x1, uxtx #2`
        # is `add x0, sp, x1, lsl #2`, and `[x0, x1, sxtx]` is `[x0, x1]`.
        base_width = reg_width(base) if isinstance(base, Reg) else None
        if base_width is not None and base_width == width and kind in ("uxtx", "sxtx", "uxtw", "sxtw") and (
            (kind.endswith("x") and width == 64) or (kind.endswith("w") and width == 32)
        ):
            kind = "lsl"
        else:
            return Shifted(base, kind, amount or 0)  # `uxtw` is `uxtw #0`
    if kind == "lsl" and not amount:
        return base  # zero shifts are no shifts
    return Shifted(base, kind, amount)


def _clean(op: Operand, width: int | None = None) -> Operand:
    if isinstance(op, Name):
        return Name(_cond(op.name)) if op.name in _COND_ALIAS else op
    if isinstance(op, Shifted):
        return _clean_shift(op, width)
    if isinstance(op, Mem):
        offset = op.offset
        if offset is not None:
            offset = _clean(offset, 64)  # an index register extended to 64 bits is a plain index
        if op.mode == "offset" and offset is not None and _imm(offset) == 0:
            offset = None  # `[x0, #0]` is `[x0]`
        return Mem(op.base, offset, op.mode)
    return op


# -------------------------------------------------------------------------------------- alias tables

HINTS = {
    "nop": 0, "yield": 1, "wfe": 2, "wfi": 3, "sev": 4, "sevl": 5, "dgh": 6, "xpaclri": 7,
    "pacia1716": 8, "pacib1716": 10, "autia1716": 12, "autib1716": 14, "esb": 16, "csdb": 20,
    "clearbhb": 22, "paciaz": 24, "paciasp": 25, "pacibz": 26, "pacibsp": 27, "autiaz": 28,
    "autiasp": 29, "autibz": 30, "autibsp": 31, "chkfeat": 40,
}
_HINT_WITH_OPERAND = {("psb", "csync"): 17, ("tsb", "csync"): 18, ("gcsb", "dsync"): 19}
_BTI = {None: 32, "c": 34, "j": 36, "jc": 38}
# SMSTART/SMSTOP are MSR (immediate) to the SVCR fields: `smstart sm` is `msr svcrsm, #1`, a bare one both
_SME_MODE = {None: "svcrsmza", "sm": "svcrsm", "za": "svcrza"}

BARRIER_OPTIONS = {
    "oshld": 1, "oshst": 2, "osh": 3, "nshld": 5, "nshst": 6, "nsh": 7, "ishld": 9, "ishst": 10,
    "ish": 11, "ld": 13, "st": 14, "sy": 15,
}
_BARRIER_NAMES = {v: k for k, v in BARRIER_OPTIONS.items()}

_UNSCALED = {
    "ldur": "ldr", "ldurb": "ldrb", "ldurh": "ldrh", "ldursb": "ldrsb", "ldursh": "ldrsh",
    "ldursw": "ldrsw", "stur": "str", "sturb": "strb", "sturh": "strh", "prfum": "prfm",
}

_SHIFT_BY_REG = {"lsl": "lslv", "lsr": "lsrv", "asr": "asrv", "ror": "rorv"}
_MUL = {"mul": "madd", "mneg": "msub", "smull": "smaddl", "umull": "umaddl", "smnegl": "smsubl",
        "umnegl": "umsubl"}
_COND_SELECT = {"cset": "csinc", "csetm": "csinv", "cinc": "csinc", "cinv": "csinv", "cneg": "csneg"}
_INVERTED_LOGIC = {"bic": "and", "bics": "ands", "orn": "orr", "eon": "eor"}
_LOGIC_IMM = {"and", "ands", "orr", "eor"}

# LSE atomics without a result: `stclr x0, [x1]` is `ldclr x0, xzr, [x1]`.
_LSE_OPS = ("add", "clr", "eor", "set", "smax", "smin", "umax", "umin")
_LSE_STORE = {
    f"st{op}{order}{size}": f"ld{op}{order}{size}" for op in _LSE_OPS for order in ("", "l") for size in ("", "b", "h")
}

_B_COND = {f"b{c}": f"b.{_cond(c)}" for c in _CONDS}  # gas accepts `beq` for `b.eq`
_MOVW_KINDS = ("abs_g0", "abs_g1", "abs_g2", "abs_g3")


def _movewide_constant(kind: str, value: int) -> tuple[str, int, int] | None:
    """A move-wide relocation applied to a constant, as gas does it: (mnemonic, imm16, shift) or None.
    `:abs_gN_s:` on a negative value turns movz into movn."""
    base = kind.removesuffix("_nc").removesuffix("_s")
    if base not in _MOVW_KINDS:
        return None
    shift = 16 * _MOVW_KINDS.index(base)
    if kind.endswith("_s") and value < 0:
        return "movn", ((~value) >> shift) & 0xFFFF, shift
    return "movz", (value >> shift) & 0xFFFF, shift


# ---------------------------------------------------------------------------------------------- rules

def _bitfield(mnemonic: str, ops: tuple[Operand, ...], width: int) -> Insn | None:
    """ubfx/sbfx/ubfiz/sbfiz/bfi/bfxil/bfc and immediate shifts to ubfm/sbfm/bfm."""
    base = {"ubfx": "ubfm", "ubfiz": "ubfm", "lsl": "ubfm", "lsr": "ubfm", "sbfx": "sbfm", "sbfiz": "sbfm",
            "asr": "sbfm", "bfi": "bfm", "bfxil": "bfm", "bfc": "bfm"}[mnemonic]
    rn: Operand
    if mnemonic == "bfc":
        rd, rn, rest = ops[0], _zr(width), ops[1:]
    else:
        rd, rn, rest = ops[0], ops[1], ops[2:]
    values = [_imm(op) for op in rest]
    if any(v is None for v in values):
        return None
    if mnemonic in ("lsl", "lsr", "asr"):
        (shift,) = values
        assert shift is not None
        if mnemonic == "lsl":
            immr, imms = (-shift) % width, width - 1 - shift
        else:
            immr, imms = shift, width - 1
    else:
        lsb, field = values
        assert lsb is not None and field is not None
        if mnemonic in ("ubfx", "sbfx", "bfxil"):
            immr, imms = lsb, lsb + field - 1
        else:
            immr, imms = (-lsb) % width, field - 1
    return Insn(base, (rd, rn, Imm(immr), Imm(imms)))


def _extend(mnemonic: str, ops: tuple[Operand, ...]) -> Insn | None:
    """uxtb/uxth (32-bit only), uxtw (GNU as: x from w), sxtb/sxth/sxtw (to w or x) to ubfm/sbfm on registers
    of rd's width."""
    rd, rn = ops
    if not (isinstance(rd, Reg) and isinstance(rn, Reg)):
        return None
    width = reg_width(rd) or 32
    imms = {"b": 7, "h": 15, "w": 31}[mnemonic[-1]]
    base = "ubfm" if mnemonic.startswith("u") else "sbfm"
    return Insn(base, (rd, _as_width(rn, width), Imm(0), Imm(imms)))


def _mov(ops: tuple[Operand, ...], width: int) -> Insn | None:
    rd, src = ops
    if isinstance(src, Reg):
        if _is_sp(rd) or _is_sp(src):
            return Insn("add", (rd, src, Imm(0)))
        return Insn("orr", (rd, _zr(width), src))
    value = _imm_shifted(src)
    if value is not None:
        return Insn("mov", (rd, Imm(value & _MASK[width])))
    return None


def _move_wide(mnemonic: str, ops: tuple[Operand, ...], width: int) -> Insn | None:
    rd, src = ops[0], ops[1]
    if isinstance(src, Reloc):
        value = _constant_target(src.target)
        if value is None:
            return Insn(mnemonic, (rd, src))  # the linker fills it in: keep the relocation
        resolved = _movewide_constant(src.kind, value)
        if resolved is None:
            return None
        kind, imm16, shift = resolved
        if mnemonic == "movk":
            kind = "movk"
        src = Shifted(Imm(imm16), "lsl", shift) if shift else Imm(imm16)
        mnemonic = kind
    value = _imm_shifted(src)
    if value is None:
        return None
    if mnemonic == "movk":
        # a value means `#imm` or `#imm, lsl #s` (see _imm_shifted)
        if isinstance(src, Shifted) and isinstance(src.base, Imm):
            shift, base = src.amount or 0, src.base.value
        else:
            shift, base = 0, value
        return Insn("movk", (rd, Shifted(Imm(base), "lsl", shift) if shift else Imm(base)))
    if mnemonic == "movn":
        value = ~value
    return Insn("mov", (rd, Imm(value & _MASK[width])))


def _add_sub(mnemonic: str, ops: tuple[Operand, ...]) -> Insn:
    """`#imm, lsl #12` to the plain value; a negative immediate flips add and sub (gas encodes it so)."""
    if len(ops) == 3:
        value = _imm_shifted(ops[2])
        if value is not None:
            if value < 0:
                flip = {"add": "sub", "sub": "add", "adds": "subs", "subs": "adds"}
                return Insn(flip[mnemonic], (ops[0], ops[1], Imm(-value)))
            return Insn(mnemonic, (ops[0], ops[1], Imm(value)))
    return Insn(mnemonic, ops)


def _vector_alias(mnemonic: str, ops: tuple[Operand, ...]) -> Insn | None:
    if mnemonic == "mov" and len(ops) == 2 and all(_is_vector(op) and op.name[0] in "vz" for op in ops):
        return Insn("orr", (ops[0], ops[1], ops[1]))  # MOV (vector) is ORR with the source twice
    return None


def _alias(mnemonic: str, ops: tuple[Operand, ...]) -> Insn | None:
    """One step from an alias towards its base form, or None when `mnemonic` is already a base form."""
    if any(_is_vector(op) for op in ops):
        return _vector_alias(mnemonic, ops)  # the rules below are for general-purpose registers
    width = _width_of(ops)
    n = len(ops)
    if mnemonic in _B_COND and n == 1:
        return Insn(_B_COND[mnemonic], ops)
    if mnemonic.startswith("b.") and mnemonic[2:] in _COND_ALIAS:
        return Insn("b." + _cond(mnemonic[2:]), ops)
    if mnemonic in HINTS and n == 0:
        return Insn("hint", (Imm(HINTS[mnemonic]),))
    if mnemonic == "bti" and n <= 1:
        target = ops[0].name if ops and isinstance(ops[0], Name) else None
        if target in _BTI:
            return Insn("hint", (Imm(_BTI[target]),))
    if n == 1 and isinstance(ops[0], Name) and (mnemonic, ops[0].name) in _HINT_WITH_OPERAND:
        return Insn("hint", (Imm(_HINT_WITH_OPERAND[(mnemonic, ops[0].name)]),))
    if mnemonic in ("smstart", "smstop") and n <= 1:
        which = ops[0].name if ops and isinstance(ops[0], Name) else None
        if which in _SME_MODE:
            return Insn("msr", (Name(_SME_MODE[which]), Imm(1 if mnemonic == "smstart" else 0)))
    if mnemonic == "isb" and n == 1 and (_imm(ops[0]) == 15 or ops[0] == Name("sy")):
        return Insn("isb", ())
    if mnemonic in ("dsb", "dmb") and n == 1 and _imm(ops[0]) in _BARRIER_NAMES:
        value = _imm(ops[0])
        assert value is not None
        return Insn(mnemonic, (Name(_BARRIER_NAMES[value]),))
    if mnemonic == "ssbb" and n == 0:
        return Insn("dsb", (Imm(0),))
    if mnemonic == "pssbb" and n == 0:
        return Insn("dsb", (Imm(4),))
    if mnemonic == "ret" and n == 0:
        return Insn("ret", (Reg("x30"),))
    if mnemonic in _UNSCALED:
        return Insn(_UNSCALED[mnemonic], ops)
    if mnemonic in _LSE_STORE and n == 2 and isinstance(ops[0], Reg):
        return Insn(_LSE_STORE[mnemonic], (ops[0], _zr(reg_width(ops[0]) or 64), ops[1]))
    if mnemonic == "cmp" and n >= 2:
        return Insn("subs", (_zr(width), *ops))
    if mnemonic == "cmn" and n >= 2:
        return Insn("adds", (_zr(width), *ops))
    if mnemonic == "tst" and n >= 2:
        return Insn("ands", (_zr(width), *ops))
    if mnemonic in ("neg", "negs") and n == 2:
        return Insn(mnemonic.replace("neg", "sub"), (ops[0], _zr(width), ops[1]))
    if mnemonic in ("ngc", "ngcs") and n == 2:
        return Insn(mnemonic.replace("ngc", "sbc"), (ops[0], _zr(width), ops[1]))
    if mnemonic == "mvn" and n == 2:
        return Insn("orn", (ops[0], _zr(width), ops[1]))
    if mnemonic == "mov" and n == 2:
        return _mov(ops, width)
    if mnemonic in ("movz", "movn", "movk") and n == 2:
        return _move_wide(mnemonic, ops, width)
    if mnemonic == "orr" and n == 3 and isinstance(ops[1], Reg) and ops[1].name in ("xzr", "wzr"):
        value = _imm(ops[2])
        if value is not None:
            return Insn("mov", (ops[0], Imm(value & _MASK[width])))
    if mnemonic in _INVERTED_LOGIC and n == 3 and _imm(ops[2]) is not None:
        value = _imm(ops[2])
        assert value is not None
        return Insn(_INVERTED_LOGIC[mnemonic], (ops[0], ops[1], Imm(~value & _MASK[width])))
    if mnemonic in _LOGIC_IMM and n == 3:
        value = _imm(ops[2])
        if value is not None and value != value & _MASK[width]:
            return Insn(mnemonic, (ops[0], ops[1], Imm(value & _MASK[width])))
    if mnemonic in _SHIFT_BY_REG and n == 3:
        if isinstance(ops[2], Reg):
            return Insn(_SHIFT_BY_REG[mnemonic], ops)
        if mnemonic == "ror" and _imm(ops[2]) is not None:
            return Insn("extr", (ops[0], ops[1], ops[1], ops[2]))
        return _bitfield(mnemonic, ops, width)
    if mnemonic in ("ubfx", "sbfx", "ubfiz", "sbfiz", "bfi", "bfxil") and n == 4:
        return _bitfield(mnemonic, ops, width)
    if mnemonic == "bfc" and n == 3:
        return _bitfield(mnemonic, ops, width)
    if mnemonic in ("uxtb", "uxth", "uxtw", "sxtb", "sxth", "sxtw") and n == 2:
        return _extend(mnemonic, ops)
    if mnemonic in _COND_SELECT and isinstance(ops[-1], Name) and ops[-1].name in _INVERT:
        inverted = Name(_INVERT[_cond(ops[-1].name)])
        if mnemonic in ("cset", "csetm") and n == 2:
            return Insn(_COND_SELECT[mnemonic], (ops[0], _zr(width), _zr(width), inverted))
        if n == 3:
            return Insn(_COND_SELECT[mnemonic], (ops[0], ops[1], ops[1], inverted))
    if mnemonic in _MUL and n == 3:
        acc = _zr(64 if mnemonic in ("smull", "umull", "smnegl", "umnegl") else width)
        return Insn(_MUL[mnemonic], (*ops, acc))
    if mnemonic in ("tbz", "tbnz") and n == 3 and isinstance(ops[0], Reg):
        bit = _imm(ops[1])
        if bit is not None and reg_width(ops[0]) is not None:
            reg = _as_width(ops[0], 64 if bit >= 32 else 32)
            if reg != ops[0]:
                return Insn(mnemonic, (reg, *ops[1:]))
    if mnemonic in ("add", "sub", "adds", "subs"):
        return _add_sub(mnemonic, ops)
    return None


def _operand_width(mnemonic: str, ops: tuple[Operand, ...]) -> int | None:
    # Extend-to-same-width folding only applies to add/sub and memory indexes (done in _clean for Mem).
    return _width_of(ops) if mnemonic in _ADD_SUB else None


def _post_index(mnemonic: str, ops: tuple[Operand, ...]) -> tuple[Operand, ...]:
    """`[x0], #16` may come as two operands (Mem, Imm): one post-index Mem, as the IR defines it."""
    if len(ops) >= 2 and mnemonic[:2] in ("ld", "st") and isinstance(ops[-1], Imm | Reg):
        mem = ops[-2]
        if isinstance(mem, Mem) and mem.offset is None and mem.mode == "offset":
            return (*ops[:-2], Mem(mem.base, ops[-1], "post"))
    return ops


def canonical(insn: Insn) -> Insn:
    """The base form of `insn`; canonical(canonical(i)) == canonical(i)."""
    mnemonic = insn.mnemonic.lower()
    width = _operand_width(mnemonic, insn.operands)
    ops = tuple(_clean(op, width) for op in _post_index(mnemonic, insn.operands))
    for _ in range(8):  # each step is one alias expansion; chains are short (cmp #-1 -> subs -> adds)
        step = _alias(mnemonic, ops)
        if step is None or step == Insn(mnemonic, ops):
            break
        mnemonic = step.mnemonic
        width = _operand_width(mnemonic, step.operands)
        ops = tuple(_clean(op, width) for op in step.operands)
    return Insn(mnemonic, ops)


def same(a: Insn, b: Insn) -> bool:
    """Whether two instructions are the same machine instruction, up to aliases."""
    return canonical(a) == canonical(b)

