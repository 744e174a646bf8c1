"""The disassembler front end: read the object an assembler made of a `.s` file (verifier.objfront.assemblers)
back into the IR.

The ELF mapping symbols (`$x`, `$d`, and `$x.N`/`$d.N`) say which bytes of a section are code; code is
decoded word by word with capstone (verifier.decode), data stays bytes plus, where a data relocation
applies, a `DataValue`. Relocations say where an instruction or datum really points, so targets come out
as `Loc(section, offset)` for anything defined in this object and `SymRef` for what the linker resolves.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass
from pathlib import Path

from elftools.elf.constants import SH_FLAGS
from elftools.elf.elffile import ELFFile
from elftools.elf.enums import ENUM_RELOC_TYPE_AARCH64
from elftools.elf.relocation import RelocationSection
from elftools.elf.sections import Section as ElfSection
from elftools.elf.sections import SymbolTableSection

from verifier.frontend.decode import DecodeError, decode_word_checked
from verifier.ir.program import AlternativeSite, DataValue, Item, Loc, Program, Section, Symbol, SymRef, Target
from verifier.util.errors import UserError

_MAPPING = re.compile(r"^\$([xd])(\..*)?$")

# Data relocations: type -> (field size, relative to the field's own address).
_DATA_RELOCS = {
    "R_AARCH64_ABS64": (8, False),
    "R_AARCH64_ABS32": (4, False),
    "R_AARCH64_ABS16": (2, False),
    "R_AARCH64_PREL64": (8, True),
    "R_AARCH64_PREL32": (4, True),
    "R_AARCH64_PREL16": (2, True),
}

ALT_RECORD = 12  # struct alt_instr: s32 orig, s32 repl, u16 cpucap, u8 orig_len, u8 alt_len
ALT_CB_BIT = 1 << 15  # ARM64_CB_BIT: the "replacement" is a callback that patches the site at boot


@dataclass
class _Reloc:
    offset: int
    type: str
    target: Target


class _Reader:
    def __init__(self, elf: ELFFile) -> None:
        self.elf = elf
        symtab = elf.get_section_by_name(".symtab")
        self.symtab = symtab if isinstance(symtab, SymbolTableSection) else None

    def section_name(self, index: int) -> str:
        return self.elf.get_section(index).name

    def target(self, sym_index: int, addend: int) -> Target:
        """Where relocated symbol + addend points: into a section of this object, or to the linker."""
        assert self.symtab is not None
        sym = self.symtab.get_symbol(sym_index)
        shndx = sym["st_shndx"]
        if sym["st_info"]["type"] == "STT_SECTION":
            return Loc(self.section_name(shndx), addend)
        if isinstance(shndx, int):  # defined in a section here
            return Loc(self.section_name(shndx), sym["st_value"] + addend)
        return SymRef(sym.name, addend)  # SHN_UNDEF (and ABS/COMMON, which only the linker places)

    def relocations(self, section: ElfSection) -> dict[int, _Reloc]:
        out: dict[int, _Reloc] = {}
        for rel_name in (".rela" + section.name, ".rel" + section.name):
            rel = self.elf.get_section_by_name(rel_name)
            if not isinstance(rel, RelocationSection):
                continue
            for r in rel.iter_relocations():
                rtype = _reloc_type_name(r["r_info_type"])
                addend = r["r_addend"] if rel.is_RELA() else 0
                offset = r["r_offset"]
                if offset in out:
                    raise UserError(f"two relocations at {section.name}+{offset:#x}; not supported")
                out[offset] = _Reloc(offset, rtype, self.target(r["r_info_sym"], addend))
        return out

    def mapping(self, index: int) -> list[tuple[int, str]]:
        """Sorted (offset, 'x'|'d') mapping symbols of a section."""
        marks: dict[int, str] = {}
        if self.symtab is None:
            return []
        for sym in self.symtab.iter_symbols():
            m = _MAPPING.match(sym.name)
            if m and sym["st_shndx"] == index:
                marks[sym["st_value"]] = m.group(1)  # gas may repeat a symbol at one address: last wins
        return sorted(marks.items())


def _reloc_type_name(rtype: int) -> str:
    for name, value in ENUM_RELOC_TYPE_AARCH64.items():
        if value == rtype:
            return name
    return f"R_AARCH64_{rtype}"


def _flags(sh_flags: int) -> str:
    out = "a" if sh_flags & SH_FLAGS.SHF_ALLOC else ""
    out += "w" if sh_flags & SH_FLAGS.SHF_WRITE else ""
    out += "x" if sh_flags & SH_FLAGS.SHF_EXECINSTR else ""
    out += "M" if sh_flags & SH_FLAGS.SHF_MERGE else ""
    out += "S" if sh_flags & SH_FLAGS.SHF_STRINGS else ""
    out += "G" if sh_flags & SH_FLAGS.SHF_GROUP else ""
    return out


def _ranges(size: int, marks: list[tuple[int, str]], executable: bool) -> list[tuple[int, int, str]]:
    """(start, end, 'x'|'d') ranges; bytes before the first mapping symbol follow the section's flags."""
    state = "x" if executable else "d"
    out: list[tuple[int, int, str]] = []
    pos = 0
    for offset, kind in marks:
        if offset > pos:
            out.append((pos, min(offset, size), state))
        pos, state = max(pos, offset), kind
    if pos < size:
        out.append((pos, size, state))
    return [r for r in out if r[0] < r[1]]


def _code_items(
    name: str, data: bytes, start: int, end: int, relocs: dict[int, _Reloc]
) -> list[Item]:
    items: list[Item] = []
    pos = start
    while pos + 4 <= end:
        word = int.from_bytes(data[pos : pos + 4], "little")
        raw = data[pos : pos + 4]
        rel = relocs.get(pos)
        try:
            insn = decode_word_checked(word, name, pos, (rel.type, rel.target) if rel else None)
        except DecodeError as err:
            items.append(Item(pos, 4, "undecoded", raw=raw, reason=str(err)))
        else:
            if insn is None:
                items.append(Item(pos, 4, "undecoded", raw=raw, reason=f"capstone cannot decode {word:#010x}"))
            else:
                items.append(Item(pos, 4, "insn", insn=insn, raw=raw))
        for off in range(pos + 1, pos + 4):
            if off in relocs:  # a relocation not at a word boundary of code: say so rather than drop it
                items[-1] = Item(pos, 4, "undecoded", raw=raw, reason=f"relocation at {name}+{off:#x}")
        pos += 4
    if pos < end:  # a code range not a multiple of 4 (not emitted by gas): keep the bytes as data
        items.append(Item(pos, end - pos, "data", raw=data[pos:end]))
    return items


def _data_items(data: bytes, start: int, end: int, relocs: dict[int, _Reloc]) -> list[Item]:
    items: list[Item] = []
    pos = start
    for offset in sorted(o for o in relocs if start <= o < end):
        rel = relocs[offset]
        field = _DATA_RELOCS.get(rel.type)
        if field is None or offset < pos:
            continue  # not a data relocation we model; the bytes stay as they are
        size, pcrel = field
        if offset > pos:
            items.append(Item(pos, offset - pos, "data", raw=data[pos:offset]))
        value = DataValue(size, 0, rel.target, pcrel)
        items.append(Item(offset, size, "data", data=(value,), raw=data[offset : offset + size]))
        pos = offset + size
    if pos < end:
        items.append(Item(pos, end - pos, "data", raw=data[pos:end]))
    return items


def _symbols(reader: _Reader) -> dict[str, Symbol]:
    out: dict[str, Symbol] = {}
    if reader.symtab is None:
        return out
    for sym in reader.symtab.iter_symbols():
        info = sym["st_info"]
        if not sym.name or _MAPPING.match(sym.name) or info["type"] in ("STT_SECTION", "STT_FILE"):
            continue
        shndx = sym["st_shndx"]
        loc = Loc(reader.section_name(shndx), sym["st_value"]) if isinstance(shndx, int) else None
        if shndx == "SHN_ABS":
            continue  # an absolute equate has no location to point at
        binding = {"STB_GLOBAL": "global", "STB_WEAK": "weak"}.get(info["bind"], "local")
        kind = {"STT_FUNC": "function", "STT_OBJECT": "object"}.get(info["type"], "")
        out.setdefault(sym.name, Symbol(sym.name, loc, binding, kind, sym["st_size"] or None))
    return out


def _alternatives(prog: Program) -> list[AlternativeSite]:
    """Decode `.altinstructions` records from the relocated data values (both fields are PREL32)."""
    section = prog.sections.get(".altinstructions")
    if section is None:
        return []
    fields = {it.offset: it for it in section.items}
    raw = b"".join(it.raw or b"" for it in section.items)
    out: list[AlternativeSite] = []
    for base in range(0, section.size - ALT_RECORD + 1, ALT_RECORD):
        orig_item, repl_item = fields.get(base), fields.get(base + 4)
        if not (orig_item and repl_item and orig_item.data and repl_item.data):
            continue
        orig, repl = orig_item.data[0].target, repl_item.data[0].target
        cap, orig_len, repl_len = struct.unpack_from("<HBB", raw, base + 8)
        if not isinstance(orig, Loc):
            continue
        # before ARM64_CB_BIT (5.x) a callback record has no replacement and points at a function
        old_style = repl_len == 0 and (isinstance(repl, SymRef) or (
            isinstance(repl, Loc) and not repl.section.startswith(".altinstr_replacement")))
        if cap & ALT_CB_BIT or old_style:
            callback = repl.symbol if isinstance(repl, SymRef) else str(repl)
            out.append(AlternativeSite(orig, orig_len, None, repl_len, cap & ~ALT_CB_BIT, callback))
        elif isinstance(repl, Loc):
            out.append(AlternativeSite(orig, orig_len, repl, repl_len, cap))
    return out


def lift_object(path_o: str | Path) -> Program:
    """Read an AArch64 ELF relocatable object into the IR."""
    with open(path_o, "rb") as fh:
        elf = ELFFile(fh)
        if elf["e_machine"] != "EM_AARCH64":
            raise UserError(f"not an AArch64 object (machine {elf['e_machine']})", file=str(path_o))
        reader = _Reader(elf)
        prog = Program(str(path_o))
        for index, sec in enumerate(elf.iter_sections()):
            flags = sec["sh_flags"]
            if not flags & SH_FLAGS.SHF_ALLOC:
                continue
            section = Section(sec.name, _flags(flags), size=sec["sh_size"])
            prog.sections[sec.name] = section
            if sec["sh_type"] == "SHT_NOBITS":
                continue  # no contents: nothing to decode
            data = sec.data()
            relocs = reader.relocations(sec)
            ranges = _ranges(len(data), reader.mapping(index), bool(flags & SH_FLAGS.SHF_EXECINSTR))
            for start, end, state in ranges:
                if state == "x":
                    section.items.extend(_code_items(sec.name, data, start, end, relocs))
                else:
                    section.items.extend(_data_items(data, start, end, relocs))
        prog.symbols = _symbols(reader)
    prog.alternatives = _alternatives(prog)
    return prog
