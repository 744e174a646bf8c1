"""What one canonical instruction does: a table from mnemonic to a function over the machine state.

`execute(insn, state, ctx)` applies the instruction's data effects to `state` (registers, flags,
PSTATE fields, system registers, memory through `ctx`) and returns its control effect (`Next`,
`Jump`, `CondJump`, `Call`, `Return`, `Eret`, `Trap`, `Barrier`) for the engine to follow. Only the base
forms `verifier.canon.canonical` produces reach this table. Anything not modelled exactly comes back as
`Unsupported(reason)` with the state untouched: every handler checks its operands before it writes.
The flag semantics follow the Arm ARM pseudocode (AddWithCarry, DecodeBitMasks for the bitfield moves,
ConditionHolds); the differential tests run each mnemonic against Unicorn.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Protocol

import z3

from verifier.ir import sysregs
from verifier.ir.canon import reg_width
from verifier.ir.program import Addr, Imm, Insn, Mem, Name, Operand, Reg, Reloc, Shifted, SysReg, Target
from verifier.semantics import names
from verifier.semantics.state import BV, State, bv

ASSUMPTIONS = """Modelling assumptions of the instruction semantics (each one is a place where the model is
narrower than the architecture; the engine's verdicts hold under them):

- Exclusive stores (stxr, stlxr, stxp, stlxp and their b/h forms) always succeed: memory is written and
  the status register is written 0. The exclusive monitor is not modelled, and clrex is a no-op.
- Pointer authentication is not modelled: every hint-space instruction (paciasp = hint #25, autiasp =
  hint #29, pacia1716, autia1716, xpaclri, ...) is a no-op, i.e. pointers carry no PAC and signing then
  authenticating gives the pointer back. BTI landing pads (hint #32..#38) are no-ops; branch target
  checking is not modelled. All other hints (nop, yield, wfe, wfi, sev, esb, csdb, clearbhb, ...) are no-ops
  for the data state. The PAC instructions outside hint space (pacia, autia, retaa, braa, ...) are
  Unsupported.
- Barriers and maintenance operations have no data effect: dsb, dmb, sb, ssbb, pssbb, prfm, tlbi, ic, and
  dc except the ones that write memory (dc zva/gva/gzva are Unsupported). Memory is one coherent,
  single-observer store: ordering (acquire/release, ldapr, ldnp/stnp) does not change values. isb returns
  Barrier("isb") so the engine sees the context synchronisation.
- `at` (address translation) writes PAR_EL1 with an unconstrained fresh value; the translation is not
  modelled.
- ldtr/sttr (unprivileged accesses) are modelled as ordinary loads and stores: their permission checks
  (and PSTATE.PAN/UAO's effect on them) are not modelled, they read and write memory like ldr/str.
- cas compares and, on a mismatch, writes the old value back (the same bytes), so memory is unchanged.
- PSTATE fields outside NZCV, DAIF, SPSel and SS live in `state.sysregs` under the encoding of their
  MRS/MSR register view, holding that view's value (the field at its architectural bit, other bits 0):
  PAN (bit 22), UAO (bit 23), DIT (bit 24), SSBS (bit 12), TCO (bit 25); see PSTATE_FIELDS. `msr <field>,
  #imm` and `msr <field>, xN` write them; `mrs` reads them. Their side effects (PAN blocking EL0 accesses,
  UAO, speculation controls, tag checks) are not modelled.
- SPSel is `state.spsel`, a Python int: `msr spsel, xN` with a symbolic xN is Unsupported.
- SME's PSTATE.SM and PSTATE.ZA are bits 0 and 1 of SVCR in `state.sysregs`: SMSTART/SMSTOP (`msr svcrsm|
  svcrza|svcrsmza, #imm`) set or clear them, `mrs`/`msr svcr` read and write the register. What entering or
  leaving streaming mode does to the vector registers, and the ZA storage itself, are not modelled.
- The SIMD&FP and SVE registers (vectors, predicates, FFR) are not modelled. An instruction that only moves
  values among them (the vector forms of and/orr/eor/bic/orn, among them `mov v0.16b, v1.16b`; pfalse;
  wrffr) has no effect on the modelled state; any other instruction with such an operand is Unsupported.
- The vector lengths are not modelled: `rdvl xd, #imm` gives imm times an unknown length in bytes, one for
  SVE (a multiple of 16 from 16 to 256) and one for streaming mode (PSTATE.SM set; a power of two from 16 to
  256), the same at every rdvl. Writes of the registers that
  change them (ZCR_ELx, SMCR_ELx) are Unsupported.
- Traps (brk, udf, hvc, smc, svc) are reported as Trap(kind, imm); what they do is the engine's business.
- Accesses that the architecture leaves CONSTRAINED UNPREDICTABLE (writeback onto the transfer register,
  ldp into one register twice, an exclusive status register that overlaps the data or base register,
  mrs/msr of SP_EL0 while it is the current stack pointer, SP_EL1 at EL1) are Unsupported.
"""

# ------------------------------------------------------------------------------------------- context


class ExecContext(Protocol):
    """What the engine supplies to one instruction's semantics."""

    pc: BV  # this instruction's address
    next_pc: BV  # pc + 4

    def address(self, target: Target) -> BV:
        """The 64-bit address of a code or data target (`Loc` or `SymRef`)."""
        ...

    def reloc(self, reloc: Reloc) -> BV:
        """A relocated operand's value as a 64-bit vector: `page`/`got` the page address adrp gives
        (target & ~0xfff), `lo12`/`lo12_nc`/`got_lo12` the low 12 bits of the (GOT entry) address,
        `abs_gN`/`abs_gN_nc` the 16-bit move-wide field (target >> 16*N) & 0xffff, unshifted."""
        ...

    def load(self, state: State, addr: BV, size: int) -> BV:
        """`size` bytes (little-endian) at `addr`, as an 8*size-bit vector."""
        ...

    def store(self, state: State, addr: BV, value: BV, size: int) -> None:
        """Write the low 8*size bits of `value` at `addr`."""
        ...


# ------------------------------------------------------------------------------------------- effects


@dataclass(frozen=True)
class Next:
    """Fall through to the next instruction."""


@dataclass(frozen=True, eq=False)
class Jump:
    """An unconditional branch: direct (IR target) or indirect (64-bit value, br)."""

    target: Target | BV


@dataclass(frozen=True, eq=False)
class CondJump:
    """Taken to `target` when `cond` holds, else fall through."""

    cond: z3.BoolRef
    target: Target


@dataclass(frozen=True, eq=False)
class Call:
    """bl/blr: x30 already holds the return address."""

    target: Target | BV


@dataclass(frozen=True, eq=False)
class Return:
    target: BV


@dataclass(frozen=True)
class Eret:
    """Exception return: the engine does PC <- ELR, PSTATE <- SPSR."""


@dataclass(frozen=True)
class Trap:
    kind: str  # brk udf hvc smc svc
    imm: int


@dataclass(frozen=True)
class Barrier:
    kind: str  # "isb"


@dataclass(frozen=True)
class Unsupported:
    reason: str


Effect = Next | Jump | CondJump | Call | Return | Eret | Trap | Barrier | Unsupported
# Every handler takes (insn, state, ctx) positionally; one that does not need some names them _insn, _state, _ctx.
Handler = Callable[[Insn, State, ExecContext], Effect]

NEXT = Next()


class _Unsupported(Exception):
    """Raised by a handler before it writes anything; execute() turns it into Unsupported."""


# ----------------------------------------------------------------------------------- bit-vector helpers


def _mask(width: int) -> int:
    return (1 << width) - 1


def _bit(value: BV, i: int) -> BV:
    return z3.Extract(i, i, value)


def _bool1(cond: z3.BoolRef) -> BV:
    return z3.If(cond, bv(1, 1), bv(0, 1))


def _fit(value: BV, width: int) -> BV:
    """The low `width` bits (zero-extended when narrower)."""
    if value.size() == width:
        return value
    if value.size() > width:
        return z3.Extract(width - 1, 0, value)
    return z3.ZeroExt(width - value.size(), value)


def _zero_ext(value: BV, width: int) -> BV:
    return value if value.size() == width else z3.ZeroExt(width - value.size(), value)


def _sign_ext(value: BV, width: int) -> BV:
    return value if value.size() == width else z3.SignExt(width - value.size(), value)


def _clz(value: BV) -> BV:
    """Count of leading zero bits, as a value of the same width."""
    width = value.size()
    result: BV = bv(width, width)
    for i in range(width):  # the highest set bit ends up outermost
        result = z3.If(_bit(value, i) == 1, bv(width - 1 - i, width), result)
    return result


def _reverse_bytes(value: BV, container: int) -> BV:
    """Reverse the bytes inside each `container`-bit chunk (rev16/rev32/rev)."""
    width = value.size()
    chunks: list[BV] = []
    for top in range(width - 1, -1, -container):  # most significant chunk first
        low = top - container + 1
        chunks.extend(z3.Extract(low + 8 * i + 7, low + 8 * i, value) for i in range(container // 8))
    return z3.Concat(*chunks)


# -------------------------------------------------------------------------------------------- flags


def add_with_carry(x: BV, y: BV, carry: BV) -> tuple[BV, BV]:
    """The Arm ARM's AddWithCarry: (result, NZCV as 4 bits)."""
    width = x.size()
    total = z3.ZeroExt(1, x) + z3.ZeroExt(1, y) + z3.ZeroExt(width, carry)
    result = z3.Extract(width - 1, 0, total)
    n = _bit(result, width - 1)
    z = _bool1(result == 0)
    c = _bit(total, width)
    v = _bool1(z3.And(_bit(x, width - 1) == _bit(y, width - 1), n != _bit(x, width - 1)))
    return result, z3.Concat(n, z, c, v)


def _logic_flags(result: BV) -> BV:
    width = result.size()
    return z3.Concat(_bit(result, width - 1), _bool1(result == 0), bv(0, 2))


def condition_holds(cond: str, nzcv: BV) -> z3.BoolRef:
    """ConditionHolds for a condition name (eq ne hs/cs lo/cc mi pl vs vc hi ls ge lt gt le al nv)."""
    n, z, c, v = (_bit(nzcv, i) == 1 for i in (3, 2, 1, 0))
    base: dict[str, z3.BoolRef] = {
        "eq": z, "hs": c, "cs": c, "mi": n, "vs": v, "hi": z3.And(c, z3.Not(z)), "ge": n == v,
        "gt": z3.And(z3.Not(z), n == v), "al": z3.BoolVal(True),
    }
    inverse = {"ne": "eq", "lo": "hs", "cc": "cs", "pl": "mi", "vc": "vs", "ls": "hi", "lt": "ge", "le": "gt"}
    if cond in base:
        return base[cond]
    if cond in inverse:
        return z3.Not(base[inverse[cond]])
    if cond == "nv":  # in A64 `nv` behaves as `al`
        return z3.BoolVal(True)
    raise ValueError(f"unknown condition '{cond}'")


# ----------------------------------------------------------------------------------------- operands


def _ops(insn: Insn, count: int) -> tuple[Operand, ...]:
    if len(insn.operands) != count:
        raise _Unsupported(f"expected {count} operands")
    return insn.operands


def _gpr(op: Operand) -> Reg:
    """A general-purpose register operand (x/w/sp/zr); vector and other registers are not modelled."""
    if not isinstance(op, Reg) or reg_width(op) is None:
        raise _Unsupported(f"operand '{op}' is not a general-purpose register")
    return op


def _width(op: Operand) -> int:
    width = reg_width(_gpr(op))
    assert width is not None
    return width


def _regno(reg: Reg) -> int:
    """x5/w5 -> 5, sp/wsp -> 31, xzr/wzr -> 32 (the zero register never overlaps anything)."""
    if reg.name in ("sp", "wsp"):
        return 31
    if reg.name in ("xzr", "wzr"):
        return 32
    return int(reg.name[1:])


def _read(state: State, op: Operand, width: int | None = None) -> BV:
    reg = _gpr(op)
    if width is not None and reg_width(reg) != width:
        raise _Unsupported(f"register '{reg}' is not {width}-bit")
    return state.read_reg(reg.name)


def _imm(op: Operand) -> int:
    if not isinstance(op, Imm) or not isinstance(op.value, int):
        raise _Unsupported(f"operand '{op}' is not an immediate")
    return op.value


def _name(op: Operand) -> str:
    if not isinstance(op, Name):
        raise _Unsupported(f"operand '{op}' is not a name")
    return op.name


def _holds(op: Operand, state: State) -> z3.BoolRef:
    """The condition operand of csel/ccmp evaluated on the current flags."""
    try:
        return condition_holds(_name(op), state.nzcv)
    except ValueError as err:
        raise _Unsupported(str(err)) from None


_EXTEND_BITS = {"b": 8, "h": 16, "w": 32, "x": 64}
_SHIFTS = ("lsl", "lsr", "asr", "ror")
_EXTENDS = ("uxtb", "uxth", "uxtw", "uxtx", "sxtb", "sxth", "sxtw", "sxtx")


def _shift(value: BV, kind: str, amount: int) -> BV:
    width = value.size()
    if not 0 <= amount < width:
        raise _Unsupported(f"shift amount {amount} out of range")
    if amount == 0:
        return value
    amt = bv(amount, width)
    if kind == "lsl":
        return value << amt
    if kind == "lsr":
        return z3.LShR(value, amt)
    if kind == "asr":
        return value >> amt
    return z3.RotateRight(value, amt)


def _extend(value: BV, kind: str, amount: int, width: int) -> BV:
    """ExtendReg: the low 8/16/32/64 bits of `value`, sign- or zero-extended to `width`, shifted left."""
    if not 0 <= amount <= 4:
        raise _Unsupported(f"extend shift {amount} out of range")
    bits = min(_EXTEND_BITS[kind[-1]], value.size(), width)
    part = z3.Extract(bits - 1, 0, value)
    part = _sign_ext(part, width) if kind[0] == "s" else _zero_ext(part, width)
    return part << bv(amount, width) if amount else part


def _shifted(state: State, op: Shifted, width: int, kinds: tuple[str, ...]) -> BV:
    if op.kind not in kinds:
        raise _Unsupported(f"'{op.kind}' not allowed here")
    amount = op.amount or 0
    if op.kind in _EXTENDS:
        return _extend(_read(state, op.base), op.kind, amount, width)
    return _shift(_read(state, op.base, width), op.kind, amount)


def _operand2(state: State, ctx: ExecContext, op: Operand, width: int, kinds: tuple[str, ...]) -> BV:
    """The flexible second operand: immediate, relocated immediate, register, shifted/extended register."""
    if isinstance(op, Imm):
        value = _imm(op)
        if value != value & _mask(width):
            raise _Unsupported(f"immediate {value:#x} does not fit {width} bits")
        return bv(value, width)
    if isinstance(op, Reloc):
        return _fit(ctx.reloc(op), width)
    if isinstance(op, Shifted) and isinstance(op.base, Reg):
        return _shifted(state, op, width, kinds)
    return _read(state, op, width)


# ------------------------------------------------------------------------------------ data processing

_ADDSUB_SHIFTS = ("lsl", "lsr", "asr", *_EXTENDS)


@dataclass(frozen=True)
class _AddSub:
    """Which of add/adds/sub/subs/adc/adcs/sbc/sbcs: subtract, set the flags, add the carry in."""

    sub: bool
    flags: bool
    carry: bool


def _addsub(insn: Insn, state: State, ctx: ExecContext, *, form: _AddSub) -> Effect:
    sub, flags, carry = form.sub, form.flags, form.carry
    rd, rn, op2 = _ops(insn, 3)
    width = _width(rd)
    x = _read(state, rn, width)
    if carry:  # adc/sbc: register operands only
        y = _read(state, op2, width)
        carry_in = _bit(state.nzcv, 1)
    else:
        y = _operand2(state, ctx, op2, width, _ADDSUB_SHIFTS)
        carry_in = bv(1 if sub else 0, 1)
    result, nzcv = add_with_carry(x, ~y if sub else y, carry_in)
    # The same value in +/- form: Z3's simplifier cancels `a - a` but not `a + ~a + 1`, and the engine
    # needs pointer arithmetic like the stack-overflow check in kernel_ventry to simplify back.
    extra = _zero_ext(carry_in, width)
    result = x - y - (bv(1, width) - extra) if sub else x + y + extra
    state.write_reg(_gpr(rd).name, result)
    if flags:
        state.nzcv = z3.simplify(nzcv)
    return NEXT


_LOGIC_OPS: dict[str, Callable[[BV, BV], BV]] = {
    "and": lambda a, b: a & b,
    "orr": lambda a, b: a | b,
    "eor": lambda a, b: a ^ b,
}


@dataclass(frozen=True)
class _Logical:
    """Which of and/ands/orr/orn/eor/eon/bic/bics: the operation, the second operand inverted, the flags set."""

    op: str
    invert: bool
    flags: bool


def _logical(insn: Insn, state: State, ctx: ExecContext, *, form: _Logical) -> Effect:
    op, invert, flags = form.op, form.invert, form.flags
    if insn.operands and _unmodelled_register(insn.operands[0]):
        return _vector_only(insn, state, ctx)
    rd, rn, op2 = _ops(insn, 3)
    width = _width(rd)
    x = _read(state, rn, width)
    y = _operand2(state, ctx, op2, width, _SHIFTS)
    result = _LOGIC_OPS[op](x, ~y if invert else y)
    state.write_reg(_gpr(rd).name, result)
    if flags:
        state.nzcv = z3.simplify(_logic_flags(result))
    return NEXT


def _mov(insn: Insn, state: State, _ctx: ExecContext) -> Effect:
    """The canonical constant load `mov rd, #value` (every movz/movn/orr-immediate spelling)."""
    rd, src = _ops(insn, 2)
    width = _width(rd)
    value = _imm(src)
    if value != value & _mask(width):
        raise _Unsupported(f"constant {value:#x} does not fit {width} bits")
    state.write_reg(_gpr(rd).name, bv(value, width))
    return NEXT


_MOVW_SHIFT = {"abs_g0": 0, "abs_g1": 16, "abs_g2": 32, "abs_g3": 48}


def _move_wide(insn: Insn, state: State, ctx: ExecContext, *, kind: str) -> Effect:
    """movz/movn/movk with `#imm16[, lsl #s]` or a move-wide relocation (`:abs_g1_nc:sym`)."""
    rd, src = _ops(insn, 2)
    width = _width(rd)
    if isinstance(src, Reloc):
        base = src.kind.removesuffix("_nc")
        if base not in _MOVW_SHIFT:  # the signed `_s` kinds let the linker swap movz/movn: not modelled
            raise _Unsupported(f"relocation :{src.kind}:")
        shift = _MOVW_SHIFT[base]
        field = z3.Extract(15, 0, ctx.reloc(src))
    else:
        if isinstance(src, Shifted) and src.kind == "lsl" and isinstance(src.base, Imm):
            imm16, shift = _imm(src.base), src.amount or 0
        else:
            imm16, shift = _imm(src), 0
        if not 0 <= imm16 <= 0xFFFF:
            raise _Unsupported(f"move-wide immediate {imm16:#x}")
        field = bv(imm16, 16)
    if shift % 16 or shift >= width:
        raise _Unsupported(f"move-wide shift {shift}")
    if kind == "movk":
        old = _read(state, rd, width)
        parts = []
        if shift + 16 < width:
            parts.append(z3.Extract(width - 1, shift + 16, old))
        parts.append(field)
        if shift:
            parts.append(z3.Extract(shift - 1, 0, old))
        value = z3.Concat(*parts) if len(parts) > 1 else parts[0]
    else:
        value = _zero_ext(field, width) << bv(shift, width) if shift else _zero_ext(field, width)
        if kind == "movn":
            value = ~value
    state.write_reg(_gpr(rd).name, value)
    return NEXT


def _mul_add(insn: Insn, state: State, _ctx: ExecContext, *, sub: bool) -> Effect:
    rd, rn, rm, ra = _ops(insn, 4)
    width = _width(rd)
    product = _read(state, rn, width) * _read(state, rm, width)
    acc = _read(state, ra, width)
    state.write_reg(_gpr(rd).name, acc - product if sub else acc + product)
    return NEXT


def _mul_add_long(insn: Insn, state: State, _ctx: ExecContext, *, signed: bool, sub: bool) -> Effect:
    """smaddl/umaddl/smsubl/umsubl: Xd = Xa +/- Wn * Wm (32x32 -> 64)."""
    rd, rn, rm, ra = _ops(insn, 4)
    _read(state, rd, 64)
    ext = _sign_ext if signed else _zero_ext
    product = ext(_read(state, rn, 32), 64) * ext(_read(state, rm, 32), 64)
    acc = _read(state, ra, 64)
    state.write_reg(_gpr(rd).name, acc - product if sub else acc + product)
    return NEXT


def _mul_high(insn: Insn, state: State, _ctx: ExecContext, *, signed: bool) -> Effect:
    rd, rn, rm = _ops(insn, 3)
    _read(state, rd, 64)
    ext = _sign_ext if signed else _zero_ext
    product = ext(_read(state, rn, 64), 128) * ext(_read(state, rm, 64), 128)
    state.write_reg(_gpr(rd).name, z3.Extract(127, 64, product))
    return NEXT


def _divide(insn: Insn, state: State, _ctx: ExecContext, *, signed: bool) -> Effect:
    rd, rn, rm = _ops(insn, 3)
    width = _width(rd)
    x, y = _read(state, rn, width), _read(state, rm, width)
    # division by zero gives 0; INT_MIN / -1 wraps to INT_MIN (bvsdiv does), rounding is towards zero
    quotient = x / y if signed else z3.UDiv(x, y)
    state.write_reg(_gpr(rd).name, z3.If(y == 0, bv(0, width), quotient))
    return NEXT


def _bitfield(insn: Insn, state: State, _ctx: ExecContext, *, kind: str) -> Effect:
    """ubfm/sbfm/bfm by immr/imms, as DecodeBitMasks defines them, written as extract-and-place."""
    rd, rn, op_r, op_s = _ops(insn, 4)
    width = _width(rd)
    src = _read(state, rn, width)
    r, s = _imm(op_r), _imm(op_s)
    if not (0 <= r < width and 0 <= s < width):
        raise _Unsupported(f"bitfield immr/imms {r}/{s}")
    if s >= r:  # bits s..r of the source to bit 0
        field, pos = z3.Extract(s, r, src), 0
    else:  # bits s..0 of the source to bit width - r
        field, pos = z3.Extract(s, 0, src), width - r
    length = field.size()
    top = width - pos - length  # bits above the field
    if kind == "bfm":
        dst = _read(state, rd, width)
        parts = []
        if top:
            parts.append(z3.Extract(width - 1, pos + length, dst))
        parts.append(field)
        if pos:
            parts.append(z3.Extract(pos - 1, 0, dst))
        result = z3.Concat(*parts) if len(parts) > 1 else parts[0]
    else:
        extended = (_sign_ext if kind == "sbfm" else _zero_ext)(field, width - pos)
        result = z3.Concat(extended, bv(0, pos)) if pos else extended
    state.write_reg(_gpr(rd).name, result)
    return NEXT


def _extr(insn: Insn, state: State, _ctx: ExecContext) -> Effect:
    rd, rn, rm, op_lsb = _ops(insn, 4)
    width = _width(rd)
    lsb = _imm(op_lsb)
    if not 0 <= lsb < width:
        raise _Unsupported(f"extr lsb {lsb}")
    both = z3.Concat(_read(state, rn, width), _read(state, rm, width))
    state.write_reg(_gpr(rd).name, z3.Extract(lsb + width - 1, lsb, both))
    return NEXT


def _shift_var(insn: Insn, state: State, _ctx: ExecContext, *, kind: str) -> Effect:
    """lslv/lsrv/asrv/rorv: the amount is Rm modulo the width."""
    rd, rn, rm = _ops(insn, 3)
    width = _width(rd)
    x = _read(state, rn, width)
    amount = _read(state, rm, width) & bv(width - 1, width)
    if kind == "lsl":
        result = x << amount
    elif kind == "lsr":
        result = z3.LShR(x, amount)
    elif kind == "asr":
        result = x >> amount
    else:
        result = z3.RotateRight(x, amount)
    state.write_reg(_gpr(rd).name, result)
    return NEXT


def _unary(insn: Insn, state: State, _ctx: ExecContext, *, op: str) -> Effect:
    rd, rn = _ops(insn, 2)
    width = _width(rd)
    x = _read(state, rn, width)
    if op == "clz":
        result = _clz(x)
    elif op == "cls":  # CountLeadingZeroBits(x<N-1:1> EOR x<N-2:0>)
        result = _zero_ext(_clz(z3.Extract(width - 1, 1, x) ^ z3.Extract(width - 2, 0, x)), width)
    elif op == "rbit":
        result = z3.Concat(*(_bit(x, i) for i in range(width)))
    elif op == "rev16":
        result = _reverse_bytes(x, 16)
    elif op == "rev32":
        if width != 64:
            raise _Unsupported("rev32 of a w register")
        result = _reverse_bytes(x, 32)
    else:  # rev (rev64 for x registers)
        if op == "rev64" and width != 64:
            raise _Unsupported("rev64 of a w register")
        result = _reverse_bytes(x, width)
    state.write_reg(_gpr(rd).name, result)
    return NEXT


def _cond_select(insn: Insn, state: State, _ctx: ExecContext, *, op: str) -> Effect:
    rd, rn, rm, cond = _ops(insn, 4)
    width = _width(rd)
    holds = _holds(cond, state)
    x, y = _read(state, rn, width), _read(state, rm, width)
    if op == "csinc":
        y = y + 1
    elif op == "csinv":
        y = ~y
    elif op == "csneg":
        y = -y
    state.write_reg(_gpr(rd).name, z3.If(holds, x, y))
    return NEXT


def _cond_compare(insn: Insn, state: State, _ctx: ExecContext, *, negate: bool) -> Effect:
    """ccmp/ccmn: the flags of rn - op2 (rn + op2) when cond holds, else #nzcv."""
    rn, op2, op_nzcv, cond = _ops(insn, 4)
    width = _width(rn)
    x = _read(state, rn, width)
    y = bv(_imm(op2), width) if isinstance(op2, Imm) else _read(state, op2, width)
    flags_imm = _imm(op_nzcv)
    if not 0 <= flags_imm <= 15:
        raise _Unsupported(f"nzcv #{flags_imm}")
    holds = _holds(cond, state)
    if negate:
        _, flags = add_with_carry(x, y, bv(0, 1))
    else:
        _, flags = add_with_carry(x, ~y, bv(1, 1))
    state.nzcv = z3.simplify(z3.If(holds, flags, bv(flags_imm, 4)))
    return NEXT


def _adr(insn: Insn, state: State, ctx: ExecContext, *, page: bool) -> Effect:
    rd, target = _ops(insn, 2)
    _read(state, rd, 64)
    if isinstance(target, Reloc) and page:
        value = ctx.reloc(target)
    elif isinstance(target, Addr):
        value = ctx.address(target.target)
        if page:
            value = value & bv(~0xFFF & _mask(64))
    else:
        raise _Unsupported(f"operand '{target}'")
    state.write_reg(_gpr(rd).name, value)
    return NEXT


# ------------------------------------------------------------------------------------------- memory


@dataclass(frozen=True)
class _Access:
    size: int | None  # bytes; None: the register's width
    signed: bool = False


def _base_address(state: State, ctx: ExecContext, mem: Operand) -> tuple[Mem, BV, BV | None]:
    """(mem, address accessed, new base value or None) for offset/pre/post addressing."""
    if not isinstance(mem, Mem):
        raise _Unsupported(f"operand '{mem}' is not a memory operand")
    base = _read(state, mem.base, 64)
    off = mem.offset
    if off is None:
        offset: BV = bv(0)
    elif isinstance(off, Imm):
        offset = bv(_imm(off) & _mask(64))
    elif isinstance(off, Reloc):
        offset = ctx.reloc(off)
    elif isinstance(off, Shifted) and isinstance(off.base, Reg):
        offset = _shifted(state, off, 64, ("lsl", "uxtw", "sxtw", "sxtx"))
    elif isinstance(off, Reg):
        offset = _read(state, off, 64)
    else:
        raise _Unsupported(f"memory offset '{off}'")
    if mem.mode == "offset":
        return mem, base + offset, None
    if mem.mode == "pre":
        return mem, base + offset, base + offset
    if mem.mode == "post":
        return mem, base, base + offset
    raise _Unsupported(f"addressing mode '{mem.mode}'")


def _check_writeback(mem: Mem, regs: list[Reg]) -> None:
    # writeback onto a transfer register is CONSTRAINED UNPREDICTABLE (unless the base is sp)
    if mem.mode != "offset" and _regno(mem.base) != 31 and any(_regno(r) == _regno(mem.base) for r in regs):
        raise _Unsupported("writeback base is also a transfer register")


def _size_of(access: _Access, reg: Reg) -> int:
    return access.size if access.size is not None else _width(reg) // 8


def _loaded(value: BV, access: _Access, width: int) -> BV:
    return _sign_ext(value, width) if access.signed else _zero_ext(value, width)


def _load(insn: Insn, state: State, ctx: ExecContext, *, access: _Access) -> Effect:
    rt, src = _ops(insn, 2)
    width = _width(rt)
    size = _size_of(access, _gpr(rt))
    if size * 8 > width:
        raise _Unsupported(f"{size}-byte load into a {width}-bit register")
    if isinstance(src, Addr):  # literal: pc-relative
        value = ctx.load(state, ctx.address(src.target), size)
        state.write_reg(_gpr(rt).name, _loaded(value, access, width))
        return NEXT
    mem, addr, writeback = _base_address(state, ctx, src)
    _check_writeback(mem, [_gpr(rt)])
    value = ctx.load(state, addr, size)
    if writeback is not None:
        state.write_reg(mem.base.name, writeback)
    state.write_reg(_gpr(rt).name, _loaded(value, access, width))
    return NEXT


def _store(insn: Insn, state: State, ctx: ExecContext, *, access: _Access) -> Effect:
    rt, dst = _ops(insn, 2)
    size = _size_of(access, _gpr(rt))
    value = _fit(_read(state, rt), 8 * size)
    mem, addr, writeback = _base_address(state, ctx, dst)
    _check_writeback(mem, [_gpr(rt)])
    ctx.store(state, addr, value, size)
    if writeback is not None:
        state.write_reg(mem.base.name, writeback)
    return NEXT


def _load_pair(insn: Insn, state: State, ctx: ExecContext, *, access: _Access) -> Effect:
    rt1, rt2, src = _ops(insn, 3)
    width = _width(rt1)
    if _width(rt2) != width:
        raise _Unsupported("pair of registers of different widths")
    size = _size_of(access, _gpr(rt1))
    if _regno(_gpr(rt1)) == _regno(_gpr(rt2)) != 32:
        raise _Unsupported("load pair into one register twice")
    mem, addr, writeback = _base_address(state, ctx, src)
    _check_writeback(mem, [_gpr(rt1), _gpr(rt2)])
    first = ctx.load(state, addr, size)
    second = ctx.load(state, addr + size, size)
    if writeback is not None:
        state.write_reg(mem.base.name, writeback)
    state.write_reg(_gpr(rt1).name, _loaded(first, access, width))
    state.write_reg(_gpr(rt2).name, _loaded(second, access, width))
    return NEXT


def _store_pair(insn: Insn, state: State, ctx: ExecContext) -> Effect:
    rt1, rt2, dst = _ops(insn, 3)
    width = _width(rt1)
    if _width(rt2) != width:
        raise _Unsupported("pair of registers of different widths")
    size = width // 8
    first, second = _read(state, rt1), _read(state, rt2)
    mem, addr, writeback = _base_address(state, ctx, dst)
    _check_writeback(mem, [_gpr(rt1), _gpr(rt2)])
    ctx.store(state, addr, first, size)
    ctx.store(state, addr + size, second, size)
    if writeback is not None:
        state.write_reg(mem.base.name, writeback)
    return NEXT


def _check_status(status: Reg, mem: Operand, data: list[Reg]) -> None:
    if not isinstance(mem, Mem) or mem.mode != "offset":
        raise _Unsupported(f"operand '{mem}'")
    if _width(status) != 32:
        raise _Unsupported("exclusive status register must be a w register")
    overlaps = [*data, mem.base] if _regno(mem.base) != 31 else data
    if _regno(status) != 32 and any(_regno(status) == _regno(r) for r in overlaps):
        raise _Unsupported("exclusive status register overlaps the data or base register")


def _store_exclusive(insn: Insn, state: State, ctx: ExecContext, *, access: _Access) -> Effect:
    """stxr ws, rt, [xn]: always succeeds (see ASSUMPTIONS): stores rt, ws = 0."""
    ws, rt, dst = _ops(insn, 3)
    _check_status(_gpr(ws), dst, [_gpr(rt)])
    size = _size_of(access, _gpr(rt))
    value = _fit(_read(state, rt), 8 * size)
    _, addr, _ = _base_address(state, ctx, dst)
    ctx.store(state, addr, value, size)
    state.write_reg(_gpr(ws).name, bv(0, 32))
    return NEXT


def _store_exclusive_pair(insn: Insn, state: State, ctx: ExecContext) -> Effect:
    ws, rt1, rt2, dst = _ops(insn, 4)
    width = _width(rt1)
    if _width(rt2) != width:
        raise _Unsupported("pair of registers of different widths")
    _check_status(_gpr(ws), dst, [_gpr(rt1), _gpr(rt2)])
    first, second = _read(state, rt1), _read(state, rt2)
    _, addr, _ = _base_address(state, ctx, dst)
    ctx.store(state, addr, first, width // 8)
    ctx.store(state, addr + width // 8, second, width // 8)
    state.write_reg(_gpr(ws).name, bv(0, 32))
    return NEXT


def _simple_address(state: State, mem: Operand) -> BV:
    """`[xn]` for the atomics (no offset, no writeback)."""
    if not isinstance(mem, Mem) or mem.mode != "offset" or mem.offset is not None:
        raise _Unsupported(f"atomic access needs [xn], not '{mem}'")
    return _read(state, mem.base, 64)


_LSE_OPS: dict[str, Callable[[BV, BV], BV]] = {
    "add": lambda old, v: old + v,
    "clr": lambda old, v: old & ~v,
    "eor": lambda old, v: old ^ v,
    "set": lambda old, v: old | v,
    "smax": lambda old, v: z3.If(old >= v, old, v),
    "smin": lambda old, v: z3.If(old <= v, old, v),
    "umax": lambda old, v: z3.If(z3.UGE(old, v), old, v),
    "umin": lambda old, v: z3.If(z3.ULE(old, v), old, v),
}
_LSE_SIZE = {"": None, "b": 1, "h": 2}


def _atomic_size(rs: Reg, rt: Reg, size: int | None) -> int:
    width = _width(rs)
    if _width(rt) != width:
        raise _Unsupported("atomic registers of different widths")
    if size is not None and width != 32:
        raise _Unsupported("byte/halfword atomic on x registers")
    return size if size is not None else width // 8


def _lse(insn: Insn, state: State, ctx: ExecContext, *, combine: Callable[[BV, BV], BV], size: int | None) -> Effect:
    """ld<op> and swp: old = [xn]; [xn] = combine(old, rs); rt = old (zero-extended)."""
    rs, rt, mem = _ops(insn, 3)
    nbytes = _atomic_size(_gpr(rs), _gpr(rt), size)
    operand = _fit(_read(state, rs), 8 * nbytes)
    addr = _simple_address(state, mem)
    old = ctx.load(state, addr, nbytes)
    ctx.store(state, addr, combine(old, operand), nbytes)
    state.write_reg(_gpr(rt).name, _zero_ext(old, _width(rt)))
    return NEXT


def _cas(insn: Insn, state: State, ctx: ExecContext, *, size: int | None) -> Effect:
    """cas rs, rt, [xn]: if [xn] == rs then [xn] = rt; rs = old [xn]."""
    rs, rt, mem = _ops(insn, 3)
    nbytes = _atomic_size(_gpr(rs), _gpr(rt), size)
    expected = _fit(_read(state, rs), 8 * nbytes)
    new = _fit(_read(state, rt), 8 * nbytes)
    addr = _simple_address(state, mem)
    old = ctx.load(state, addr, nbytes)
    ctx.store(state, addr, z3.If(old == expected, new, old), nbytes)
    state.write_reg(_gpr(rs).name, _zero_ext(old, _width(rs)))
    return NEXT


# -------------------------------------------------------------------------------------------- system


def _encoding(name: str) -> int:
    enc = sysregs.encode(name)
    assert enc is not None, name
    return enc


SPSEL = _encoding("spsel")
CURRENT_EL = _encoding("currentel")
SP_EL0 = _encoding("sp_el0")
SP_EL1 = _encoding("sp_el1")
PAR_EL1 = _encoding("par_el1")

# PSTATE fields kept in state.sysregs: name -> (encoding of the MRS/MSR register view, bit in that view)
PSTATE_FIELDS: dict[str, tuple[int, int]] = {
    "pan": (_encoding("pan"), 22),
    "uao": (_encoding("uao"), 23),
    "dit": (_encoding("dit"), 24),
    "ssbs": (_encoding("ssbs"), 12),
    "tco": (_encoding("tco"), 25),
}
_FIELD_BY_ENCODING = {enc: bit for enc, bit in PSTATE_FIELDS.values()}

# SME's mode bits in SVCR, by the PSTATE field name MSR (immediate) writes them with (SMSTART/SMSTOP)
SVCR = _encoding("svcr")
SVCR_FIELDS = {"svcrsm": 0b01, "svcrza": 0b10, "svcrsmza": 0b11}
# what sets the vector lengths rdvl reads (see ASSUMPTIONS)
_VECTOR_LENGTH_CONTROLS = {_encoding(name) for name in ("zcr_el1", "zcr_el12", "zcr_el2", "zcr_el3", "smcr_el1",
                                                         "smcr_el12", "smcr_el2", "smcr_el3")}


def _sysreg(op: Operand) -> int:
    if not isinstance(op, SysReg):
        raise _Unsupported(f"operand '{op}' is not a system register")
    return op.encoding


def _mrs(insn: Insn, state: State, _ctx: ExecContext) -> Effect:
    rt, reg = _ops(insn, 2)
    _read(state, rt, 64)
    enc = _sysreg(reg)
    if enc == SPSEL:
        value = bv(state.spsel)
    elif enc == CURRENT_EL:
        value = bv(state.el << 2)
    elif enc == SP_EL1 or (enc == SP_EL0 and not state.spsel):
        raise _Unsupported(f"mrs of {sysregs.name_of(enc)} while it is the current stack pointer")
    elif enc in _FIELD_BY_ENCODING:
        value = state.read_sysreg(enc) & bv(1 << _FIELD_BY_ENCODING[enc])
    else:
        value = state.read_sysreg(enc)
    state.write_reg(_gpr(rt).name, value)
    return NEXT


def _msr(insn: Insn, state: State, _ctx: ExecContext) -> Effect:
    target, src = _ops(insn, 2)
    if isinstance(target, Name) and isinstance(src, Imm):
        return _msr_pstate(target.name, _imm(src), state)
    if isinstance(target, Name):
        # the operand grammar reads `msr pan, x0` with the PSTATE field's name: it is the register form
        named = sysregs.encode(target.name)
        if named is None:
            raise _Unsupported(f"unknown system register '{target.name}'")
        target = SysReg(named, target.name)
    enc = _sysreg(target)
    value = _read(state, src, 64)
    if enc == SPSEL:
        value = z3.simplify(value)
        if not z3.is_bv_value(value):
            raise _Unsupported("msr spsel with a symbolic value")
        state.spsel = value.as_long() & 1
    elif enc == CURRENT_EL:
        raise _Unsupported("CurrentEL is read-only")
    elif enc in _VECTOR_LENGTH_CONTROLS:
        raise _Unsupported(f"msr {sysregs.name_of(enc)}: a vector length change (rdvl's length is fixed)")
    elif enc == SP_EL1 or (enc == SP_EL0 and not state.spsel):
        raise _Unsupported(f"msr of {sysregs.name_of(enc)} while it is the current stack pointer")
    elif enc in _FIELD_BY_ENCODING:
        state.write_sysreg(enc, value & bv(1 << _FIELD_BY_ENCODING[enc]))
    else:
        state.write_sysreg(enc, value)  # daif, nzcv, sp_el0 are handled by the state
    return NEXT


def _msr_pstate(field: str, imm: int, state: State) -> Effect:
    """`msr <pstatefield>, #imm`."""
    if field in ("daifset", "daifclr"):
        if not 0 <= imm <= 15:
            raise _Unsupported(f"msr {field}, #{imm}")
        daif = state.daif | bv(imm, 4) if field == "daifset" else state.daif & bv(~imm & 15, 4)
        state.daif = z3.simplify(daif)
    elif field == "spsel":
        state.spsel = imm & 1
    elif field in PSTATE_FIELDS:
        enc, bit = PSTATE_FIELDS[field]
        state.write_sysreg(enc, bv((imm & 1) << bit))
    elif field in SVCR_FIELDS:
        if imm not in (0, 1):
            raise _Unsupported(f"msr {field}, #{imm}")
        mask = SVCR_FIELDS[field]
        svcr = state.read_sysreg(SVCR)
        state.write_sysreg(SVCR, svcr | bv(mask) if imm else svcr & bv(~mask & _mask(64)))
    else:
        raise _Unsupported(f"PSTATE field '{field}'")
    return NEXT


def _unmodelled_register(op: Operand) -> bool:
    """A SIMD&FP, SVE vector or predicate register: state the model does not have."""
    return isinstance(op, Reg) and reg_width(op) is None and op.name[:1] in "vzpqdshb"


def _vector_only(insn: Insn, _state: State, _ctx: ExecContext) -> Effect:
    """An instruction among registers the model does not have: no effect on the modelled state."""
    if not insn.operands or not all(_unmodelled_register(op) for op in insn.operands):
        raise _Unsupported("an operand other than a SIMD&FP or SVE register")
    return NEXT


def _rdvl(insn: Insn, state: State, _ctx: ExecContext) -> Effect:
    """`rdvl xd, #imm`: imm times the vector length in bytes, the streaming one while PSTATE.SM is set."""
    rd, imm = _ops(insn, 2)
    streaming = z3.Extract(0, 0, state.read_sysreg(SVCR)) == 1
    length = z3.If(streaming, names.vector_length(streaming=True), names.vector_length(streaming=False))
    state.write_reg(_gpr(rd).name, z3.simplify(length * _imm(imm)))
    return NEXT


def _at(insn: Insn, state: State, _ctx: ExecContext) -> Effect:
    """`at <op>, xN`: PAR_EL1 becomes an unconstrained value (translation not modelled)."""
    _name(_ops(insn, 2)[0])
    state.write_sysreg(PAR_EL1, z3.FreshConst(z3.BitVecSort(64), "par_el1_at"))
    return NEXT


_DC_WRITES_MEMORY = ("zva", "gva", "gzva")


def _maintenance(insn: Insn, _state: State, _ctx: ExecContext) -> Effect:
    """tlbi/ic/dc: no data effect (see ASSUMPTIONS), except dc zva & co., which zero memory."""
    if not insn.operands or not isinstance(insn.operands[0], Name):
        raise _Unsupported("maintenance operation without a named op")
    if insn.mnemonic == "dc" and insn.operands[0].name in _DC_WRITES_MEMORY:
        raise _Unsupported(f"dc {insn.operands[0].name} writes memory")
    return NEXT


def _no_effect(_insn: Insn, _state: State, _ctx: ExecContext) -> Effect:
    return NEXT


def _isb(_insn: Insn, _state: State, _ctx: ExecContext) -> Effect:
    return Barrier("isb")


def _hint(insn: Insn, _state: State, _ctx: ExecContext) -> Effect:
    (op,) = _ops(insn, 1)
    if not 0 <= _imm(op) <= 127:
        raise _Unsupported(f"hint #{_imm(op)}")
    return NEXT  # every hint is a no-op for the data state (see ASSUMPTIONS)


def _trap(insn: Insn, _state: State, _ctx: ExecContext) -> Effect:
    (op,) = _ops(insn, 1)
    return Trap(insn.mnemonic, _imm(op))


def _eret(insn: Insn, _state: State, _ctx: ExecContext) -> Effect:
    _ops(insn, 0)
    return Eret()


# ------------------------------------------------------------------------------------------ branches


def _target(op: Operand) -> Target:
    if not isinstance(op, Addr):
        raise _Unsupported(f"operand '{op}' is not a branch target")
    return op.target


def _b(insn: Insn, _state: State, _ctx: ExecContext) -> Effect:
    (target,) = _ops(insn, 1)
    return Jump(_target(target))


def _b_cond(insn: Insn, state: State, _ctx: ExecContext, *, cond: str) -> Effect:
    (target,) = _ops(insn, 1)
    if cond in ("al", "nv"):
        return Jump(_target(target))
    return CondJump(condition_holds(cond, state.nzcv), _target(target))


def _bl(insn: Insn, state: State, ctx: ExecContext) -> Effect:
    (op,) = _ops(insn, 1)
    target = _target(op)
    state.write_reg("x30", ctx.next_pc)
    return Call(target)


def _blr(insn: Insn, state: State, ctx: ExecContext) -> Effect:
    (op,) = _ops(insn, 1)
    target = _read(state, op, 64)  # read before x30 is written: `blr x30` calls the old x30
    state.write_reg("x30", ctx.next_pc)
    return Call(target)


def _br(insn: Insn, state: State, _ctx: ExecContext) -> Effect:
    (op,) = _ops(insn, 1)
    return Jump(_read(state, op, 64))


def _ret(insn: Insn, state: State, _ctx: ExecContext) -> Effect:
    (op,) = _ops(insn, 1)
    return Return(_read(state, op, 64))


def _cb(insn: Insn, state: State, _ctx: ExecContext, *, nonzero: bool) -> Effect:
    rt, target = _ops(insn, 2)
    value = _read(state, rt)
    zero = value == bv(0, value.size())
    return CondJump(z3.Not(zero) if nonzero else zero, _target(target))


def _tb(insn: Insn, state: State, _ctx: ExecContext, *, nonzero: bool) -> Effect:
    rt, op_bit, target = _ops(insn, 3)
    value = _read(state, rt)
    bit = _imm(op_bit)
    if not 0 <= bit < value.size():
        raise _Unsupported(f"test of bit {bit} of a {value.size()}-bit register")
    is_set = _bit(value, bit) == 1
    return CondJump(is_set if nonzero else z3.Not(is_set), _target(target))


# ----------------------------------------------------------------------------------------------- table

CONDITIONS = ("eq", "ne", "hs", "lo", "mi", "pl", "vs", "vc", "hi", "ls", "ge", "lt", "gt", "le", "al", "nv")


def _table() -> dict[str, Handler]:
    t: dict[str, Handler] = {}
    for name, sub, flags, carry in [
        ("add", False, False, False), ("adds", False, True, False), ("sub", True, False, False),
        ("subs", True, True, False), ("adc", False, False, True), ("adcs", False, True, True),
        ("sbc", True, False, True), ("sbcs", True, True, True),
    ]:
        t[name] = partial(_addsub, form=_AddSub(sub, flags, carry))
    for name, op, invert, flags in [
        ("and", "and", False, False), ("ands", "and", False, True), ("orr", "orr", False, False),
        ("orn", "orr", True, False), ("eor", "eor", False, False), ("eon", "eor", True, False),
        ("bic", "and", True, False), ("bics", "and", True, True),
    ]:
        t[name] = partial(_logical, form=_Logical(op, invert, flags))
    t["mov"] = _mov
    for kind in ("movz", "movn", "movk"):
        t[kind] = partial(_move_wide, kind=kind)
    t["madd"] = partial(_mul_add, sub=False)
    t["msub"] = partial(_mul_add, sub=True)
    for name, signed, sub in [("smaddl", True, False), ("umaddl", False, False), ("smsubl", True, True),
                              ("umsubl", False, True)]:
        t[name] = partial(_mul_add_long, signed=signed, sub=sub)
    t["smulh"] = partial(_mul_high, signed=True)
    t["umulh"] = partial(_mul_high, signed=False)
    t["sdiv"] = partial(_divide, signed=True)
    t["udiv"] = partial(_divide, signed=False)
    for kind in ("ubfm", "sbfm", "bfm"):
        t[kind] = partial(_bitfield, kind=kind)
    t["extr"] = _extr
    for kind in ("lsl", "lsr", "asr", "ror"):
        t[kind + "v"] = partial(_shift_var, kind=kind)
    for op in ("clz", "cls", "rbit", "rev", "rev16", "rev32", "rev64"):
        t[op] = partial(_unary, op=op)
    for op in ("csel", "csinc", "csinv", "csneg"):
        t[op] = partial(_cond_select, op=op)
    t["ccmp"] = partial(_cond_compare, negate=False)
    t["ccmn"] = partial(_cond_compare, negate=True)
    t["adr"] = partial(_adr, page=False)
    t["adrp"] = partial(_adr, page=True)

    # loads and stores; ordering variants (acquire/release, non-temporal, unprivileged) access alike
    word, byte, half = _Access(None), _Access(1), _Access(2)
    loads = {"": word, "b": byte, "h": half, "sb": _Access(1, True), "sh": _Access(2, True),
             "sw": _Access(4, True)}
    for suffix, access in loads.items():
        t["ldr" + suffix] = partial(_load, access=access)
        t["ldtr" + suffix] = partial(_load, access=access)
    for suffix, access in {"": word, "b": byte, "h": half}.items():
        for prefix in ("ldar", "ldapr", "ldxr", "ldaxr"):
            t[prefix + suffix] = partial(_load, access=access)
        for prefix in ("str", "sttr", "stlr"):
            t[prefix + suffix] = partial(_store, access=access)
        for prefix in ("stxr", "stlxr"):
            t[prefix + suffix] = partial(_store_exclusive, access=access)
    for name in ("ldp", "ldnp", "ldxp", "ldaxp"):
        t[name] = partial(_load_pair, access=word)
    t["ldpsw"] = partial(_load_pair, access=_Access(4, True))
    for name in ("stp", "stnp"):
        t[name] = _store_pair
    for name in ("stxp", "stlxp"):
        t[name] = _store_exclusive_pair
    for order in ("", "a", "l", "al"):
        for suffix, size in _LSE_SIZE.items():
            for op, combine in _LSE_OPS.items():
                t[f"ld{op}{order}{suffix}"] = partial(_lse, combine=combine, size=size)
            t[f"swp{order}{suffix}"] = partial(_lse, combine=lambda _old, new: new, size=size)
            t[f"cas{order}{suffix}"] = partial(_cas, size=size)

    t["mrs"] = _mrs
    t["msr"] = _msr
    t["isb"] = _isb
    for name in ("dsb", "dmb", "sb", "clrex", "prfm", "prfum", "nop"):
        t[name] = _no_effect
    t["hint"] = _hint
    for name in ("tlbi", "dc", "ic"):
        t[name] = _maintenance
    t["at"] = _at
    t["rdvl"] = _rdvl
    for name in ("pfalse", "wrffr"):
        t[name] = _vector_only
    for name in ("brk", "udf", "hvc", "smc", "svc"):
        t[name] = _trap
    t["eret"] = _eret

    t["b"] = _b
    for cond in CONDITIONS:
        t["b." + cond] = partial(_b_cond, cond=cond)
    t["bl"] = _bl
    t["blr"] = _blr
    t["br"] = _br
    t["ret"] = _ret
    t["cbz"] = partial(_cb, nonzero=False)
    t["cbnz"] = partial(_cb, nonzero=True)
    t["tbz"] = partial(_tb, nonzero=False)
    t["tbnz"] = partial(_tb, nonzero=True)
    return t


SEMANTICS: dict[str, Handler] = _table()


def supports(mnemonic: str) -> bool:
    """Whether `mnemonic` has semantics (particular operand forms may still be Unsupported)."""
    return mnemonic in SEMANTICS


def execute(insn: Insn, state: State, ctx: ExecContext) -> Effect:
    """Apply `insn`'s data effects to `state`; return its control effect. Unsupported leaves `state` as it was."""
    handler = SEMANTICS.get(insn.mnemonic)
    if handler is None:
        return Unsupported(f"no semantics for '{insn.mnemonic}' ({insn})")
    try:
        return handler(insn, state, ctx)
    except _Unsupported as err:
        return Unsupported(f"{insn}: {err}")
