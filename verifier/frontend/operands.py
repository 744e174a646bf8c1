"""Operand parse trees to IR operands.

Both front ends use this: the assembler-side one on the source text, the disassembler-side one on
capstone's text. Values that depend on layout (labels, `.`) stay `Lin` inside the operand until the
assembler finishes the layout and calls `resolve_operand`.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from typing import Any

from lark import Token, Tree

from verifier.frontend.expr import Lin, NotConstant, Scope, evaluate
from verifier.ir import sysregs
from verifier.ir.program import Addr, Imm, Insn, Mem, Name, Operand, Reg, Reloc, Shifted, SysReg


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
               "cpp", "brb", "gcsb", "tlbip"}

# Which operand is a PC-relative address, per mnemonic.
_ADDRESS_POS = {"b": 0, "bl": 0, "cbz": 1, "cbnz": 1, "tbz": 2, "tbnz": 2, "adr": 1, "adrp": 1}
_LITERAL_LOADS = {"ldr", "ldrsw", "prfm"}

_SIMD = re.compile(r"^[vz]\d+\.|^[vz]\d+$|^p\d+[./]", re.IGNORECASE)


class OperandScope(Scope):
    def register_alias(self, name: str) -> str | None:
        return None


def address_position(mnemonic: str) -> int | None:
    if mnemonic.startswith(("b.", "bc.")):
        return 0
    if mnemonic.startswith("b") and mnemonic[1:] in CONDITIONS:  # gcc also writes `beq` for `b.eq`
        return 0
    return _ADDRESS_POS.get(mnemonic)


def _value(tree: Tree, scope: Scope) -> Lin:
    return evaluate(tree, scope)


def _imm(lin: Lin) -> Imm:
    return Imm(lin.const if lin.is_const() else lin)  # type: ignore[arg-type]


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


def _reloc(tree: Tree, scope: Scope) -> Reloc:
    kind_token, expr = tree.children
    return Reloc(str(kind_token).lower(), _value(expr, scope))  # type: ignore[arg-type]


def _shift(tree: Tree, scope: Scope) -> tuple[str, int | None]:
    kind = str(tree.children[0]).lower()
    amount = _value(tree.children[1], scope).value() if len(tree.children) > 1 else None
    return kind, amount


def _memory(tree: Tree, scope: OperandScope) -> Mem:
    base = _reg(tree.children[0], scope)
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
        return Mem(base, _reg(off.children[0], scope), mode)
    index = _reg(off.children[0], scope)
    kind = str(off.children[1]).lower()
    amount = _value(off.children[2], scope).value() if len(off.children) > 2 else None
    return Mem(base, Shifted(index, kind, amount), mode)


def _bare_symbol(mnemonic: str, position: int, count: int, name: str, scope: OperandScope) -> Operand | None:
    """A lone name whose meaning depends on the instruction: register alias, sysreg, condition, option."""
    lowered = name.lower()
    alias = scope.register_alias(name)
    if alias is not None:
        return Reg(alias)
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
                out.append(_reg(tree.children[0], scope))
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
                raise Unsupported("literal pool load (`ldr Xn, =value`)")
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
                    out.append(Reloc("page", value))  # type: ignore[arg-type]
                elif is_address:
                    out.append(Addr(value))  # type: ignore[arg-type]
                else:
                    out.append(_imm(value))
            else:
                raise OperandError(f"unexpected operand form {kind}")
        except NotConstant as err:
            raise OperandError(str(err)) from None
    return tuple(out)


# ------------------------------------------------------------------------------------ late resolution


def map_values(node: Any, fn: Callable[[Lin, str], Any]) -> Any:
    """Rebuild an operand (or Insn) with every pending `Lin` replaced by fn(lin, where) where `where` is
    the field it sits in: 'imm', 'target' (Addr/Reloc)."""
    if isinstance(node, Lin):
        return fn(node, "imm")
    if isinstance(node, Insn):
        return Insn(node.mnemonic, tuple(map_values(o, fn) for o in node.operands))
    if isinstance(node, Imm) and isinstance(node.value, Lin):
        return fn(node.value, "imm")
    if isinstance(node, Addr) and isinstance(node.target, Lin):
        return Addr(fn(node.target, "target"))
    if isinstance(node, Reloc) and isinstance(node.target, Lin):
        return Reloc(node.kind, fn(node.target, "target"))
    if dataclasses.is_dataclass(node) and not isinstance(node, type):
        changes = {}
        for f in dataclasses.fields(node):
            value = getattr(node, f.name)
            if isinstance(value, Lin) or dataclasses.is_dataclass(value):
                changes[f.name] = map_values(value, fn)
        return dataclasses.replace(node, **changes) if changes else node
    return node
