"""The lifted files linked into one address space.

Every lifted section gets a concrete, page-aligned base address (as if the kernel image were laid out
that way), so return addresses, jump-table targets and `adrp`+`add` results are plain numbers the engine
can follow. A symbol that no lifted file defines has no address here: its address is a Z3 constant
(`&name`), distinct from every other region.
"""

from __future__ import annotations

import bisect
import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace

from verifier.engine.calls import Variant
from verifier.ir.program import (
    Addr,
    AlternativeSite,
    DataValue,
    Item,
    Loc,
    Mem,
    Operand,
    Program,
    Reloc,
    Shifted,
    Symbol,
    SymRef,
    Target,
)

IMAGE_BASE = 0xFFFF_8000_1000_0000
SECTION_STRIDE = 0x0100_0000  # 16 MiB apart: every lifted section fits

# include/asm-generic/bug.h: BUG()/WARN() sites are recorded in __bug_table; BUGFLAG_WARNING (1 << 0, the same
# since 2.6.19) marks a WARN, whose brk handler reports and returns to the next instruction.
BUG_TABLE = "__bug_table"
WARNING_FLAG = 1 << 0


@dataclass(frozen=True)
class CodeRef:
    """One instruction of the image."""

    program: int
    section: str
    item: Item
    address: int


@dataclass
class PlacedSection:
    program: int
    name: str
    base: int
    size: int
    items: dict[int, Item]  # by offset


def _name_rank(symbol: Symbol) -> tuple[int, int, int]:
    """Which of the symbols at one address names it (lowest first): a function, then a symbol the object
    file keeps, then any. clang's `.Lfunc_endN` ends one function where the next begins, and the callee's
    name decides which contract a call gets."""
    return (symbol.kind != "function", symbol.name.startswith((".L", "$")), symbol.binding == "local")


@dataclass
class Image:
    programs: list[Program]
    sections: list[PlacedSection] = field(default_factory=list)
    globals: dict[str, int] = field(default_factory=dict)  # symbol -> address (non-local, any file)
    locals: list[dict[str, int]] = field(default_factory=list)  # per program
    names: dict[int, str] = field(default_factory=dict)  # address -> the symbol that names it (_name_rank)
    alternatives: dict[int, list[tuple[AlternativeSite, int, int | None]]] = field(default_factory=dict)
    aliases: list[tuple[int, int, int]] = field(default_factory=list)  # (alias base, real base, size)
    warnings: frozenset[int] = frozenset()  # the brk of each WARN(): report_bug() returns past it
    # code a boot-time callback writes at an alternative's site, placed apart: its start -> (the site, the
    # words); made on demand by patched_code()
    patched: dict[int, tuple[int, tuple[int, ...]]] = field(default_factory=dict)

    # ---------------------------------------------------------------------------------- building

    @staticmethod
    def link(programs: list[Program]) -> Image:
        image = Image(programs)
        base = IMAGE_BASE
        for index, program in enumerate(programs):
            for section in program.sections.values():
                items = {item.offset: item for item in section.items}
                image.sections.append(PlacedSection(index, section.name, base, section.size, items))
                base += SECTION_STRIDE
        ranks: dict[int, tuple[int, int, int]] = {}
        for index, program in enumerate(programs):
            local: dict[str, int] = {}
            for symbol in program.symbols.values():
                if symbol.loc is None:
                    continue
                address = image.section_base(index, symbol.loc.section) + symbol.loc.offset
                local[symbol.name] = address
                rank = _name_rank(symbol)
                if address not in ranks or rank < ranks[address]:
                    ranks[address] = rank
                    image.names[address] = symbol.name
                if symbol.binding != "local":
                    image.globals.setdefault(symbol.name, address)
            image.locals.append(local)
        for index, program in enumerate(programs):
            for site in program.alternatives:
                orig = image.section_base(index, site.orig.section) + site.orig.offset
                repl = None
                if site.repl is not None:
                    repl = image.section_base(index, site.repl.section) + site.repl.offset
                image.alternatives.setdefault(orig, []).append((site, index, repl))
        image.warnings = frozenset(image._bug_sites(WARNING_FLAG))
        return image

    def _bug_sites(self, flag: int) -> Iterator[int]:
        """The brk sites whose __bug_table entry (the kernel's own record of its BUG()s and WARN()s) has
        `flag`. An entry starts with a PC-relative word naming its brk and ends with its 16-bit flags; what
        lies between (file, line) varies with the configuration, so each entry runs to the next one."""
        for placed in self.sections:
            if placed.name != BUG_TABLE:
                continue
            entries: list[tuple[int, list[DataValue]]] = []
            for offset in sorted(placed.items):
                for value in placed.items[offset].data:
                    site = self.address(value.target, placed.program) \
                        if value.pcrel and value.size == 4 and value.target is not None else None
                    if site is not None and self.code(site) is not None:
                        entries.append((site, []))
                    elif entries:
                        entries[-1][1].append(value)
            for site, fields in entries:
                flags = [v.value for v in fields if v.size == 2 and v.target is None]
                if flags and flags[-1] & flag:
                    yield site

    def patched_code(self, site: int, variant: Variant) -> int:
        """Where the instructions a callback leaves at `site` (each written word, or the original) run: a
        section of their own, made once per site and variant, each instruction located at its site's line."""
        words = tuple(w.word if w is not None else -1 for w in variant)
        for start, (at, known) in self.patched.items():
            if at == site and known == words:
                return start
        base = self.sections[-1].base + SECTION_STRIDE
        items: dict[int, Item] = {}
        for index, written in enumerate(variant):
            original = self.code(site + 4 * index)
            src = original.item.src if original is not None else None
            if written is None:
                if original is None:
                    raise ValueError(f"no instruction at {site + 4 * index:#x} to keep")
                items[4 * index] = replace(original.item, offset=4 * index)
            else:
                items[4 * index] = Item(4 * index, 4, "insn", written.insn, raw=written.word.to_bytes(4, "little"),
                                        src=src)
        at_site = self.code(site)
        program = at_site.program if at_site is not None else 0
        self.sections.append(PlacedSection(program, f"patched@{site:#x}#{len(self.patched)}", base, 4 * len(variant),
                                           items))
        self.patched[base] = (site, words)
        for cache in ("_bases", "_offsets", "_owners"):
            self.__dict__.pop(cache, None)
        return base

    def add_alias(self, section: str, alias_base: int) -> None:
        """Code of `section` is also reachable at `alias_base` (the KPTI trampoline's fixmap alias)."""
        for placed in self.sections:
            if placed.name == section:
                self.aliases.append((alias_base & ((1 << 64) - 1), placed.base, placed.size))
        self.__dict__.pop("_owners", None)  # answers for the alias addresses change

    # ----------------------------------------------------------------------------------- queries

    def section_base(self, program: int, section: str) -> int:
        for placed in self.sections:
            if placed.program == program and placed.name == section:
                return placed.base
        raise KeyError(f"no section {section} in program {program}")

    def address(self, target: Target, program: int) -> int | None:
        """The address of a target as seen from `program`; None for a symbol no lifted file defines."""
        if isinstance(target, Loc):
            if target.section == "*ABS*":
                return target.offset
            return self.section_base(program, target.section) + target.offset
        assert isinstance(target, SymRef)
        address = self.locals[program].get(target.symbol)
        if address is None:
            address = self.globals.get(target.symbol)
        return None if address is None else address + target.addend

    def unalias(self, address: int) -> int:
        for alias, real, size in self.aliases:
            if alias <= address < alias + size:
                return real + (address - alias)
        return address

    def placed(self, address: int) -> PlacedSection | None:
        address = self.unalias(address)
        bases: list[int] = self.__dict__.get("_bases") or self.__dict__.setdefault(
            "_bases", [placed.base for placed in self.sections])  # link() places them in rising order
        i = bisect.bisect_right(bases, address) - 1
        if i >= 0:
            placed = self.sections[i]
            if address < placed.base + max(placed.size, 1):
                return placed
        return None

    def offsets(self, placed: PlacedSection, start: int, end: int) -> list[int]:
        """The offsets of `placed`'s items whose address is in [start, end), in order."""
        ordered: dict[tuple[int, str], list[int]] = self.__dict__.setdefault("_offsets", {})
        keys = ordered.get((placed.program, placed.name))
        if keys is None:
            keys = ordered[(placed.program, placed.name)] = sorted(placed.items)
        return keys[bisect.bisect_left(keys, start - placed.base):bisect.bisect_left(keys, end - placed.base)]

    def code(self, address: int) -> CodeRef | None:
        address = self.unalias(address)
        placed = self.placed(address)
        if placed is None:
            return None
        item = placed.items.get(address - placed.base)
        if item is None or item.kind == "data":
            return None
        return CodeRef(placed.program, placed.name, item, address)

    def function_at(self, address: int) -> str | None:
        """The function an address belongs to: the symbol whose [start, start + .size) holds it (the
        innermost), else the nearest non-local symbol before it."""
        known: dict[int, str | None] = self.__dict__.setdefault("_owners", {})  # asked once per step
        if address not in known:
            known[address] = self._function_at(address)
        return known[address]

    def _function_at(self, address: int) -> str | None:
        for start, (site, words) in self.patched.items():
            if start <= address < start + 4 * len(words):
                return self._function_at(site)
        if not hasattr(self, "_spans"):
            spans = []
            for index, program in enumerate(self.programs):
                for symbol in program.symbols.values():
                    if symbol.loc is not None and symbol.size and not symbol.name.startswith((".L", "$")):
                        start = self.section_base(index, symbol.loc.section) + symbol.loc.offset
                        spans.append((start, start + symbol.size, symbol.name))
            self._spans = sorted(spans)
            self._sized: dict[tuple[str, int], int] = {}
            for start, end, name in self._spans:
                self._sized[(name, start)] = min(self._sized.get((name, start), end - start), end - start)
            starts = sorted((addr, name) for local in self.locals for name, addr in local.items()
                            if not name.startswith((".L", "$")))
            self._starts = starts
            self._keys = [a for a, _ in starts]
        address = self.unalias(address)
        inside = [(end - start, name) for start, end, name in self._spans if start <= address < end]
        if inside:
            return min(inside)[1]
        i = bisect.bisect_right(self._keys, address) - 1
        if i < 0:
            return None
        start, name = self._starts[i]
        placed = self.placed(address)
        if placed is None or not placed.base <= start:
            return None
        return name

    def function_span(self, name: str) -> tuple[int, int] | None:
        """[start, end) of a function as function_at sees it: its .size, else up to the next symbol."""
        start = self.globals.get(name)
        if start is None:
            start = next((local[name] for local in self.locals if name in local), None)
        if start is None:
            return None
        self.function_at(start)  # builds the span tables
        sized = self._sized.get((name, start))
        if sized is not None:
            return start, start + sized
        placed = self.placed(start)
        end = placed.base + placed.size if placed else start
        i = bisect.bisect_right(self._keys, start)
        if i < len(self._keys) and self._keys[i] < end:
            end = self._keys[i]
        return start, end

    def function_digest(self, name: str) -> str | None:
        """What a proof that ran the function `name` read of it, by content: its instructions and data items
        with source lines, its alternatives' replacements, the local data it references (jump tables,
        literals); addresses inside it relative to its start and references elsewhere by the function they
        land in, so code moving around it (an edit in an earlier function) leaves the digest alone."""
        cache: dict[str, str | None] = self.__dict__.setdefault("_digests", {})
        if name not in cache:
            cache[name] = self._function_digest(name)
        return cache[name]

    def _function_digest(self, name: str) -> str | None:
        span = self.function_span(name)
        if span is None:
            return None
        start, end = span
        placed = self.placed(start)
        if placed is None:
            return None
        digest = hashlib.sha256(name.encode())
        for offset in self.offsets(placed, start, end):
            digest.update(self._item_text(placed.items[offset], placed.program, start, end).encode())
        for address in range(start, end, 4):
            for site, program, repl in self.alternatives.get(address, ()):
                digest.update(f"alt {address - start} {site.cap} {site.callback} {site.orig_len} "
                              f"{site.repl_len}\0".encode())
                where = self.placed(repl) if repl is not None else None
                if where is not None and repl is not None:
                    for offset in self.offsets(where, repl, repl + site.repl_len):
                        digest.update(self._item_text(where.items[offset], program, start, end).encode())
        return digest.hexdigest()[:16]

    def _item_text(self, item: Item, program: int, start: int, end: int, seen: set[int] | None = None) -> str:
        seen = set() if seen is None else seen

        def target(t: Target) -> str:
            if isinstance(t, SymRef):
                local = self.locals[program].get(t.symbol) if program < len(self.locals) else None
                if local is None:
                    local = self.globals.get(t.symbol)  # defined by another lifted file
                if local is None:
                    return f"{t.symbol}{t.addend:+}"
                address = local + t.addend
            else:
                address = self.section_base(program, t.section) + t.offset
            if start <= address < end:
                return f"@{address - start}"
            code = self.code(address)
            if code is not None:
                owner = self.function_at(address)
                return f"{owner}+{address - (self.function_span(owner) or (address, 0))[0]}" if owner else "?"
            if address in seen:  # data that points back at data already in the digest
                return "data"
            seen.add(address)
            return "data(" + self._data_text(address, start, end, seen) + ")"

        src = item.src
        where = f"{src.file}:{src.line}:{[m for m, _ in src.macros]}" if src else ""
        if item.insn is not None:
            body = item.insn.mnemonic + " " + ",".join(_operand_text(o, target) for o in item.insn.operands)
        else:
            values = ",".join(f"{v.size}:{v.value}:{target(v.target) if v.target else ''}:{v.pcrel}"
                              for v in item.data)
            body = f"{item.kind} {item.size} {values} {item.raw.hex() if item.raw else ''} {item.reason}"
        return f"{body} {where}\0"

    def _data_text(self, address: int, start: int, end: int, seen: set[int]) -> str:
        """Data from `address` to the next symbol, label or 4 KiB on."""
        placed = self.placed(address)
        if placed is None:
            return "?"
        end_of_section = placed.base + placed.size
        stop = min([a for a in self.names if address < a < end_of_section] + [end_of_section, address + 4096])
        return "".join(self._item_text(placed.items[o], placed.program, start, end, seen) for o in sorted(placed.items)
                       if address <= placed.base + o < stop)

    def warns_at(self, address: int) -> bool:
        """The brk at `address` is a WARN()'s: the kernel's handler returns past it."""
        return self.unalias(address) in self.warnings

    def writable(self, address: int) -> bool:
        """Whether the lifted data at `address` may have changed since link time: a section flagged
        writable (`.data`, `.bss`, `.data..ro_after_init`, ...). Its link-time contents say nothing of what
        it holds when the code runs (boot parameters, per-boot state, init code)."""
        placed = self.placed(address)
        if placed is None:
            return False
        section = self.programs[placed.program].sections.get(placed.name)
        return section is None or "w" in section.flags

    def data_bytes(self, address: int, size: int) -> list[int | None]:
        """Constant contents of lifted data, byte by byte, across items; None for a byte that is
        relocated, or outside lifted data."""
        out: list[int | None] = []
        for want in range(address, address + size):
            placed = self.placed(want)
            byte = None
            if placed is not None:
                offset = want - placed.base
                for item in placed.items.values():
                    if item.offset <= offset < item.offset + item.size:
                        if item.raw is not None and offset - item.offset < len(item.raw):
                            byte = item.raw[offset - item.offset]
                        break
            out.append(byte)
        return out

    def data_value(self, address: int, size: int) -> DataValue | bytes | None:
        """Initial contents of lifted data at a concrete address: bytes, or a relocated field."""
        placed = self.placed(address)
        if placed is None:
            return None
        offset = address - placed.base
        for item in placed.items.values():
            if item.offset <= offset < item.offset + item.size:
                if item.data:
                    field_offset = item.offset
                    for value in item.data:
                        if field_offset == offset and value.size == size:
                            return value
                        field_offset += value.size
                if item.raw is not None and offset + size <= item.offset + len(item.raw):
                    start = offset - item.offset
                    return item.raw[start : start + size]
                return None
        return None


def _operand_text(operand: Operand, target: Callable[[Target], str]) -> str:
    """An operand as text, with its address targets as `target` names them."""
    if isinstance(operand, Addr):
        return f"<{target(operand.target)}>"
    if isinstance(operand, Reloc):
        return f":{operand.kind}:{target(operand.target)}"
    if isinstance(operand, Shifted):
        return f"{_operand_text(operand.base, target)} {operand.kind} {operand.amount}"
    if isinstance(operand, Mem) and operand.offset is not None:
        return f"[{operand.base} {_operand_text(operand.offset, target)} {operand.mode}]"
    return str(operand)
