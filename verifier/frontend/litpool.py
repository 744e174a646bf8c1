"""Literal pools, kept as GNU as keeps them for AArch64 (tc-aarch64.c: add_to_lit_pool, s_ltorg,
aarch64_cleanup; the behaviour below was checked against aarch64-linux-gnu-as 2.40).

`ldr Xn, =expr` loads from an entry of a pool. There is one pool per section, subsection and entry size
(4 bytes for `w`/`s` registers and LDRSW, 8 for `x`/`d`, 16 for `q`). An expression gas sees as the same
(the same constant with the same signedness, or the same symbol and addend) reuses its entry. `.ltorg`
dumps the current section's pools, the 4-byte one first, each aligned to its entry size; whatever is left
at the end of the file goes to the end of its section. Which pool is dumped first there does not change
the layout, as each one lands at the end of its own subsection.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, field

from lark import Tree

from verifier.frontend.expr import Lin, parse_number
from verifier.ir.program import SrcLoc

MAX_ENTRIES = 1024  # gas's MAX_LITERAL_POOL_SIZE
ENTRY_SIZES = (4, 8, 16)  # the order s_ltorg dumps a section's pools in


class PoolOverflow(Exception):
    """More entries in one pool than gas allows."""


@dataclass
class PoolEntry:
    identity: Hashable | None  # what gas compares to share an entry; None: never shared (a bignum, `.`)
    value: Lin  # the entry's contents (a 16-byte constant may be wider than 64 bits)
    src: SrcLoc  # the first `ldr` that needed it


@dataclass
class LiteralPool:
    section: str
    subsection: int
    size: int
    label: str | None = None  # where the entries will be (gas's `$$lit_\002N`); None while empty
    entries: list[PoolEntry] = field(default_factory=list)


class LiteralPools:
    def __init__(self) -> None:
        self._pools: list[LiteralPool] = []  # newest first, as gas's list_of_pools
        self._next_id = 1

    def _find(self, section: str, subsection: int, size: int) -> LiteralPool | None:
        for pool in self._pools:
            if (pool.section, pool.subsection, pool.size) == (section, subsection, size):
                return pool
        return None

    def add(self, section: str, subsection: int, size: int, entry: PoolEntry) -> tuple[str, int]:
        """The entry's place (the pool's label and the offset from it), reusing an equal entry."""
        pool = self._find(section, subsection, size)
        if pool is None:
            pool = LiteralPool(section, subsection, size)
            self._pools.insert(0, pool)
        if pool.label is None:  # a pool dumped by `.ltorg` starts again, at a new place
            pool.label = f"$$lit_\x02{self._next_id:x}"
            self._next_id += 1
        for index, old in enumerate(pool.entries):
            if entry.identity is not None and old.identity == entry.identity:
                return pool.label, index * size
        if len(pool.entries) >= MAX_ENTRIES:
            raise PoolOverflow("literal pool overflow")
        pool.entries.append(entry)
        return pool.label, (len(pool.entries) - 1) * size

    def take(self, section: str, subsection: int) -> list[LiteralPool]:
        """What `.ltorg` dumps here, in gas's order; the pools are empty afterwards."""
        out: list[LiteralPool] = []
        for size in ENTRY_SIZES:
            pool = self._find(section, subsection, size)
            if pool is None or not pool.entries:
                continue
            out.append(LiteralPool(section, subsection, size, pool.label, pool.entries))
            pool.label, pool.entries = None, []
        return out

    def places(self) -> list[tuple[str, int]]:
        """Where the end of the file dumps what is left: every pool's section and subsection, newest first."""
        return [(pool.section, pool.subsection) for pool in self._pools]


# ---------------------------------------------------------------------------- gas's view of the expression


def written_unsigned(tree: Tree) -> bool:
    """gas's X_unsigned of a constant as written: cleared by a unary minus, kept through `~`, `+` and a
    binary operator's left operand (gas: `-1` and `0xffffffffffffffff` are two entries, `~0` and `1-2`
    share the second)."""
    while isinstance(tree, Tree):
        if tree.data == "binop":
            tree = tree.children[0]
        elif tree.data == "unop":
            op = str(tree.children[0].children[0])
            if op == "-":
                return False
            if op == "!":
                return True
            tree = tree.children[1]
        else:
            return True
    return True


def bignum(tree: Tree) -> int | None:
    """A number wider than 64 bits, or its negation, as written (gas's O_big); else None."""
    negate = False
    if isinstance(tree, Tree) and tree.data == "unop" and str(tree.children[0].children[0]) == "-":
        negate, tree = True, tree.children[1]
    if not (isinstance(tree, Tree) and tree.data == "number"):
        return None
    value = parse_number(str(tree.children[0]))
    if value >> 64 == 0:
        return None
    return -value if negate else value
