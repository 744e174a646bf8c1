"""Operand parse trees to IR operands.

Both front ends use this: the assembler-side one on the source text, the disassembler-side one on
capstone's text. A value that depends on layout (a label, `.`) and every address or relocation target (whose
section only the front end knows) is lowered to a `Pending` operand; each front end replaces those through
`resolve_pending` once it knows where things are.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from lark import Token, Tree

from verifier.frontend.expr import Lin, NotConstant, Scope, evaluate
from verifier.ir import sysregs
from verifier.ir.program import (
    Addr,
    Imm,
    Insn,
    Mem,
    Name,
    Operand,
    Reg,
    Reloc,
    Shifted,
    SysReg,
    Target,
    UnresolvedOperand,
)
from verifier.util.grammars import as_token


class Unsupported(Exception):
    """Parsed, but not something the IR represents (SIMD operands, ...): recorded as undecoded."""


class OperandError(Exception):
    """Malformed for this instruction, as gas would also reject it."""


CONDITIONS = {
    "eq", "ne", "cs", "hs", "cc", "lo", "mi", "pl", "vs", "vc", "hi", "ls", "ge", "lt", "gt", "le", "al", "nv",
}
COND_LAST = {
    "csel", "csinc", "csinv", "csneg", "cset", "csetm", "cinc", "cinv", "cneg", "ccmp", "ccmn", "fcsel",
    "fccmp", "fccmpe",
}
PSTATE_FIELDS = {"daifset", "daifclr", "spsel", "pan", "uao", "dit", "ssbs", "tco", "allint", "svcrsm", "svcrza",
                 "svcrsmza", "pm"}
NAMED_FIRST = {"tlbi", "dc", "ic", "at", "dsb", "dmb", "isb", "bti", "psb", "tsb", "prfm", "prfum", "cfp", "dvp",
               "cpp", "brb", "gcsb", "tlbip", "smstart", "smstop"}

# Which operand is a PC-relative address, per mnemonic.
_ADDRESS_POS = {"b": 0, "bl": 0, "cbz": 1, "cbnz": 1, "tbz": 2, "tbnz": 2, "adr": 1, "adrp": 1}
_LITERAL_LOADS = {"ldr", "ldrsw", "prfm"}

_SIMD = re.compile(r"^[vz]\d+\.|^[vz]\d+$|^p\d+[./]|^p\d+$", re.IGNORECASE)
# A whole SIMD&FP vector (`v0.16b`), SVE vector (`z0.d`) or predicate (`p0.b`) register with its arrangement is
# an IR register; other SIMD/SVE operand forms (element indexes, lists, `p0/m`) are not represented.
_VECTOR_REGISTER = re.compile(r"^(?:v(?:3[01]|[12]?[0-9])\.(?:16b|8b|8h|4h|4s|2s|2d|1d|1q)"
                              r"|z(?:3[01]|[12]?[0-9])\.[bhsdq]|p(?:1[0-5]|[0-9])\.[bhsd])$", re.IGNORECASE)


@dataclass(frozen=True)
class Pending(UnresolvedOperand):
    """An operand lower_operands cannot finish: the value, and the operand it becomes once the value is known."""

    value: Lin
    # "imm": an immediate that depends on layout (an Imm if it comes out constant, else an Addr);
    # "address": a PC-relative address (Addr); "reloc": a relocated immediate (Reloc of `reloc_kind`)
    role: Literal["imm", "address", "reloc"]
    reloc_kind: str = ""  # for "reloc": as written after the colon (`page`, `lo12`, ...)

    def with_target(self, target: Target) -> Addr | Reloc:
        """The operand once `value` is known to be `target` (an immediate that is no constant is an address)."""
        return Reloc(self.reloc_kind, target) if self.role == "reloc" else Addr(target)


class OperandScope(Scope):
    """A Scope for operands: by default no register aliases and no literal pool (the assembler has both;
    these defaults ignore what they are given: `noqa: ARG002`)."""

    def register_alias(self, name: str) -> str | None:  # noqa: ARG002
        return None

    def literal(self, tree: Tree, size: int) -> Lin:  # noqa: ARG002
        """`=expr` of an LDR (literal): the address of the `size`-byte literal pool entry holding expr."""
        raise Unsupported("literal pool load (`ldr Xn, =value`) outside the assembler")


# LDR (literal) from a pool entry: its size by mnemonic and the destination register's kind (gas takes the
# size from the register, and LDRSW's 4-byte load shares the 4-byte pool).
_LITERAL_SIZES = {("ldr", "x"): 8, ("ldr", "w"): 4, ("ldr", "d"): 8, ("ldr", "s"): 4, ("ldr", "q"): 16,
                  ("ldrsw", "x"): 4}


def literal_size(mnemonic: str, dest: Operand) -> int:
    if mnemonic not in ("ldr", "ldrsw"):
        raise OperandError("invalid addressing mode: `=value` is only for ldr and ldrsw")
    size = None
    if isinstance(dest, Reg) and dest.name not in ("sp", "wsp"):
        size = _LITERAL_SIZES.get((mnemonic, dest.name[0]))
    if size is None:
        raise OperandError(f"operand mismatch: no `{mnemonic} {dest}, =value`")
    return size


def address_position(mnemonic: str) -> int | None:
    if mnemonic.startswith(("b.", "bc.")):
        return 0
    if mnemonic.startswith("b") and mnemonic[1:] in CONDITIONS:  # gcc also writes `beq` for `b.eq`
        return 0
    return _ADDRESS_POS.get(mnemonic)


def _value(tree: Tree, scope: Scope) -> Lin:
    return evaluate(tree, scope)


def _imm(lin: Lin) -> Imm | Pending:
    return Imm(lin.const) if lin.is_const() else Pending(lin, "imm")


def _reg(token: Token | str, scope: OperandScope) -> Reg:
    name = str(token)
    if isinstance(token, Token) and token.type == "SYMBOL":
        alias = scope.register_alias(name)
        if alias is None:
            raise OperandError(f"'{name}' is not a register")
        return Reg(alias)
    return Reg(name.lower())


def _symbol_name(tree: Tree) -> str | None:
    if isinstance(tree, Tree) and tree.data == "bare":
        inner = tree.children[0]
        if isinstance(inner, Tree) and inner.data == "symbol":
            return str(inner.children[0])
    return None


def _reloc(tree: Tree, scope: Scope) -> Pending:
    kind_token, expr = tree.children
    return Pending(_value(expr, scope), "reloc", str(kind_token).lower())


def _shift(tree: Tree, scope: Scope) -> tuple[str, int | None]:
    kind = str(tree.children[0]).lower()
    amount = _value(tree.children[1], scope).value() if len(tree.children) > 1 else None
    return kind, amount


def _memory(tree: Tree, scope: OperandScope) -> Mem:
    base = _reg(as_token(tree.children[0]), scope)
    if tree.data == "mem_base":
        return Mem(base, None, "offset")
    off = tree.children[1]
    writeback = len(tree.children) > 2
    mode = "pre" if writeback else "offset"
    if off.data == "off_imm":
        expr = off.children[0]
        if isinstance(expr, Tree) and expr.data == "symbol":
            alias = scope.register_alias(str(expr.children[0]))
            if alias is not None:
                return Mem(base, Reg(alias), mode)
        return Mem(base, _imm(_value(expr, scope)), mode)
    if off.data == "off_reloc":
        return Mem(base, _reloc(off.children[0], scope), mode)
    if off.data == "off_reg":
        return Mem(base, _reg(as_token(off.children[0]), scope), mode)
    index = _reg(as_token(off.children[0]), scope)
    kind = str(off.children[1]).lower()
    amount = _value(off.children[2], scope).value() if len(off.children) > 2 else None
    return Mem(base, Shifted(index, kind, amount), mode)


def _bare_symbol(mnemonic: str, position: int, count: int, name: str, scope: OperandScope) -> Operand | None:
    """A lone name whose meaning depends on the instruction: register alias, sysreg, condition, option."""
    lowered = name.lower()
    alias = scope.register_alias(name)
    if alias is not None:
        return Reg(alias)
    if _VECTOR_REGISTER.match(name):
        return Reg(lowered)
    if _SIMD.match(name):
        raise Unsupported(f"SIMD/SVE operand '{name}'")
    if mnemonic in COND_LAST and position == count - 1 and lowered in CONDITIONS:
        return Name(lowered)
    if (mnemonic == "mrs" and position == 1) or (mnemonic == "msr" and position == 0):
        if mnemonic == "msr" and lowered in PSTATE_FIELDS:
            return Name(lowered)
        encoding = sysregs.encode(name)
        if encoding is None:
            raise OperandError(f"unknown system register '{name}'")
        return SysReg(encoding, sysregs.name_of(encoding))
    if mnemonic in NAMED_FIRST and position == 0:
        return Name(lowered)
    if mnemonic in ("sys", "sysl") and re.fullmatch(r"c([0-9]|1[0-5])", lowered):
        return Name(lowered)
    return None


def lower_operands(mnemonic: str, trees: list[Tree], scope: OperandScope) -> tuple[Operand, ...]:
    """Turn parsed operands into IR operands (raw: aliases are canonicalised later, in verifier.canon)."""
    out: list[Operand] = []
    addr_pos = address_position(mnemonic)
    for position, tree in enumerate(trees):
        kind = tree.data
        try:
            if kind == "reg":
                out.append(_reg(as_token(tree.children[0]), scope))
            elif kind == "shift":
                if not out:
                    raise OperandError("shift or extend without an operand before it")
                shift_kind, amount = _shift(tree, scope)
                out[-1] = Shifted(out[-1], shift_kind, amount)
            elif kind in ("mem_base", "mem_offset"):
                out.append(_memory(tree, scope))
            elif kind == "reloc":
                reloc = _reloc(tree, scope)
                out.append(reloc)
            elif kind == "literal":
                if position != 1 or len(trees) != 2:
                    raise OperandError("`=value` must be the second and last operand")
                size = literal_size(mnemonic, out[0])
                out.append(Pending(scope.literal(tree.children[0], size), "address"))
            elif kind in ("imm", "bare"):
                name = _symbol_name(tree)
                if name is not None:
                    special = _bare_symbol(mnemonic, position, len(trees), name, scope)
                    if special is not None:
                        out.append(special)
                        continue
                value = _value(tree.children[0], scope)
                is_address = position == addr_pos or (
                    mnemonic in _LITERAL_LOADS and position == 1 and kind == "bare" and not value.is_const()
                )
                if mnemonic == "adrp" and position == 1:
                    out.append(Pending(value, "reloc", "page"))
                elif is_address:
                    out.append(Pending(value, "address"))
                else:
                    out.append(_imm(value))
            else:
                raise OperandError(f"unexpected operand form {kind}")
        except NotConstant as err:
            if any(_SIMD.match(str(token)) for token in tree.scan_values(lambda v: isinstance(v, Token))):
                raise Unsupported(f"SIMD/SVE operand form in operand {position + 1}") from None  # `p0/m`
            raise OperandError(str(err)) from None
    return tuple(out)


# ------------------------------------------------------------------------------------ late resolution


def resolve_pending(insn: Insn, resolve: Callable[[Pending], Operand]) -> Insn:
    """`insn` with every Pending operand, also inside a Shifted or Mem, replaced by resolve(pending)."""
    return Insn(insn.mnemonic, tuple(_resolved(op, resolve) for op in insn.operands))


def _resolved(op: Operand, resolve: Callable[[Pending], Operand]) -> Operand:
    if isinstance(op, Pending):
        return resolve(op)
    if isinstance(op, Shifted):
        return Shifted(_resolved(op.base, resolve), op.kind, op.amount)
    if isinstance(op, Mem) and op.offset is not None:
        return Mem(op.base, _resolved(op.offset, resolve), op.mode)
    return op
