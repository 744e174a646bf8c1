"""What the semantics table sees of the explorer while one instruction runs: addresses and memory.

Addresses of lifted code and data come from the linked image; an external symbol's address is a named
constant. A load or store at `base + constant` goes to that place; an address merged from several paths
(`If(c, a, b)`) is split into its cases; a load whose address has a symbolic index (a jump table) is
enumerated with the solver. Anything else is unresolved and ends the path as an unknown event.
"""

from __future__ import annotations

from collections.abc import Callable

import z3

from verifier.engine.image import CodeRef, Image
from verifier.engine.paths import Path
from verifier.ir.program import Reloc, SymRef, Target
from verifier.semantics import names
from verifier.semantics.state import BV, Region, State, bv, split_address

# The concrete values a symbolic value can take on a path (None: too many, or a solver timeout).
Enumerate = Callable[[Path, BV], list[int] | None]


class Unresolved(Exception):
    """An address or relocation the memory model cannot place."""


class MemoryAccess:
    """The semantics' view of one instruction on one path (semantics.table.ExecContext)."""

    def __init__(self, image: Image, path: Path, code: CodeRef, enumerate_values: Enumerate) -> None:
        self.image = image
        self.path = path
        self.code = code
        self.enumerate_values = enumerate_values
        self.pc = bv(path.pc)
        self.next_pc = bv(path.pc + 4)

    def address(self, target: Target) -> BV:
        address = self.image.address(target, self.code.program)
        if address is not None:
            return bv(address)
        assert isinstance(target, SymRef)
        return z3.simplify(names.symbol_address(target.symbol) + target.addend)

    def reloc(self, reloc: Reloc) -> BV:
        target = reloc.target
        address = self.image.address(target, self.code.program)
        kind = reloc.kind
        if address is None:
            # An external symbol: adrp gives its whole address and :lo12: adds nothing, so that
            # adrp+add / adrp+ldr [x, :lo12:] compute exactly &sym (+ addend) for the region model.
            full = self.address(target)
            if kind == "page":
                return full
            if kind.startswith("lo12") or kind in ("lo12_nc",):
                return bv(0)
            raise Unresolved(f"relocation :{kind}: against external {target}")
        if kind == "page":
            return bv(address & ~0xFFF)
        if kind.startswith("lo12"):
            return bv(address & 0xFFF)
        if kind.startswith("abs_g"):
            shift = 16 * int(kind[5])
            return bv((address >> shift) & 0xFFFF)
        raise Unresolved(f"relocation :{kind}:")

    def load(self, state: State, addr: BV, size: int) -> BV:
        where = split_address(addr)
        if where is None:
            cases = _address_cases(addr)
            if cases is None:
                return self._table_load(state, addr, size)
            # an address merged from several paths: the load is the merge of the loads
            result: BV | None = None
            for cond, (region, offset) in reversed(cases):
                loaded = state.memory.load(region, offset, size)
                result = loaded if result is None else z3.If(cond, loaded, result)
            assert result is not None
            return z3.simplify(result)
        region, offset = where
        value = state.memory.load(region, offset, size)
        for observer in self.path.observers:
            observer.on_load(self.path, region, offset, size, value)
        return value

    def _table_load(self, state: State, addr: BV, size: int) -> BV:
        """A load from an address with a symbolic part (a jump table indexed by the exception class):
        enumerate the addresses it can have on this path and select among their contents."""
        values = self.enumerate_values(self.path, addr)
        if not values:
            raise Unresolved(f"load from an address the engine cannot resolve ({short(addr)})")
        result: BV | None = None
        for value in values:
            where = split_address(bv(value))
            assert where is not None
            loaded = state.memory.load(where[0], where[1], size)
            result = loaded if result is None else z3.If(addr == value, loaded, result)
        assert result is not None
        return z3.simplify(result)

    def store(self, state: State, addr: BV, value: BV, size: int) -> None:
        where = split_address(addr)
        if where is not None:
            state.memory.store(where[0], where[1], value, size)
            return
        cases = _address_cases(addr)
        if cases is None:
            raise Unresolved(f"store to an address the engine cannot resolve ({short(addr)})")
        # a merged address: each place keeps its old value unless its case holds
        for cond, (region, offset) in cases:
            old = state.memory.load(region, offset, size)
            state.memory.store(region, offset, z3.If(cond, value, old), size)


def _address_cases(addr: BV, limit: int = 16) -> list[tuple[z3.BoolRef, tuple[Region, int]]] | None:
    """An address built by merging paths, `If(c, a, b)` (also below an added offset), as the places it
    can be: [(condition, (region, offset))], the conditions exclusive and complete. None if any leaf is
    not a region + offset, or there are too many."""
    addr = z3.simplify(addr)

    def leaves(term: BV, cond: z3.BoolRef) -> list[tuple[z3.BoolRef, BV]] | None:
        if z3.is_app_of(term, z3.Z3_OP_ITE):
            c, a, b = term.children()
            left = leaves(a, z3.And(cond, c))
            right = leaves(b, z3.And(cond, z3.Not(c)))
            if left is None or right is None:
                return None
            return left + right
        if z3.is_app_of(term, z3.Z3_OP_BADD):
            # push an offset into an If: (If(c, a, b) + k) -> If(c, a + k, b + k)
            children = term.children()
            for i, child in enumerate(children):
                if z3.is_app_of(child, z3.Z3_OP_ITE):
                    rest = [ch for j, ch in enumerate(children) if j != i]
                    c, a, b = child.children()
                    pushed = z3.If(c, z3.Sum(a, *rest), z3.Sum(b, *rest))
                    return leaves(pushed, cond)
        return [(cond, term)]

    found = leaves(addr, z3.BoolVal(True))
    if found is None or len(found) > limit or len(found) < 2:
        return None
    out = []
    for cond, term in found:
        where = split_address(term)
        if where is None:
            return None
        out.append((z3.simplify(cond), where))
    return out


def short(term: z3.ExprRef, limit: int = 160) -> str:
    """A term as one line of at most `limit` characters, for messages."""
    text = " ".join(str(z3.simplify(term)).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
