"""The assembler's objects linked at the image's addresses: each allocated section's bytes at the base the
prover gave it, with the relocations applied as a linker would. A symbol no object defines is a stub: a
word in the window after the referencing section (within a branch's reach) that the run intercepts, or
the address the layout pinned for a symbol the path reads."""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path

from elftools.elf.constants import SH_FLAGS
from elftools.elf.elffile import ELFFile
from elftools.elf.relocation import RelocationSection
from elftools.elf.sections import SymbolTableSection

from verifier.engine.image import Image
from verifier.semantics.names import symbol_base

M64 = (1 << 64) - 1
STUB_GAP = 0x1000  # stubs start a page after the section's end


class NotLinkable(Exception):
    """An object the run cannot place as the prover did (a relocation kind it does not apply)."""


@dataclass
class Linked:
    chunks: list[tuple[int, bytearray]] = field(default_factory=list)  # address -> bytes
    stubs: dict[int, str] = field(default_factory=dict)  # stub address -> the symbol it stands for
    # a branch the image's spacing of sections puts out of its range goes to a word near it that the run
    # sends on to the target (a veneer without a scratch register): word -> target
    far: dict[int, int] = field(default_factory=dict)


def _field(insn: int, value: int, shift: int, bits: int) -> int:
    mask = ((1 << bits) - 1) << shift
    return (insn & ~mask) | ((value << shift) & mask)


_RANGE = {"CALL26": 1 << 27, "JUMP26": 1 << 27, "CONDBR19": 1 << 20, "TSTBR14": 1 << 15}


def _in_range(kind: str, s_a: int, place: int) -> bool:
    rel = (s_a - place) & M64
    signed = rel - (1 << 64) if rel >> 63 else rel
    return kind not in _RANGE or -_RANGE[kind] <= signed < _RANGE[kind]


def _patch(data: bytearray, offset: int, kind: str, s_a: int, place: int) -> None:
    word = struct.unpack_from("<I", data, offset)[0] if offset + 4 <= len(data) else 0
    rel = (s_a - place) & M64
    signed = rel - (1 << 64) if rel >> 63 else rel
    if kind in ("ABS64", "PREL64"):
        struct.pack_into("<Q", data, offset, (s_a if kind == "ABS64" else rel) & M64)
        return
    if kind in ("ABS32", "PREL32"):
        struct.pack_into("<I", data, offset, (s_a if kind == "ABS32" else rel) & 0xFFFF_FFFF)
        return
    if kind in ("ABS16", "PREL16"):
        struct.pack_into("<H", data, offset, (s_a if kind == "ABS16" else rel) & 0xFFFF)
        return
    if kind in ("CALL26", "JUMP26"):
        if not -(1 << 27) <= signed < (1 << 27):
            raise NotLinkable(f"branch out of range at {place:#x}")
        word = _field(word, signed >> 2, 0, 26)
    elif kind in ("CONDBR19", "LD_PREL_LO19"):
        word = _field(word, signed >> 2, 5, 19)
    elif kind == "TSTBR14":
        word = _field(word, signed >> 2, 5, 14)
    elif kind in ("ADR_PREL_PG_HI21", "ADR_PREL_PG_HI21_NC", "ADR_PREL_LO21"):
        value = signed if kind == "ADR_PREL_LO21" else ((s_a & ~0xFFF) - (place & ~0xFFF)) >> 12
        if kind == "ADR_PREL_PG_HI21" and not -(1 << 20) <= value < (1 << 20):
            raise NotLinkable(f"adrp out of range at {place:#x}")
        word = _field(_field(word, value & 3, 29, 2), value >> 2, 5, 19)
    elif kind == "ADD_ABS_LO12_NC" or kind == "LDST8_ABS_LO12_NC":
        word = _field(word, s_a & 0xFFF, 10, 12)
    elif kind.startswith("LDST") and kind.endswith("_ABS_LO12_NC"):
        scale = {"LDST16": 1, "LDST32": 2, "LDST64": 3, "LDST128": 4}[kind.split("_")[0]]
        word = _field(word, (s_a & 0xFFF) >> scale, 10, 12)
    elif kind.startswith("MOVW_UABS_G"):
        word = _field(word, (s_a >> (16 * int(kind[11]))) & 0xFFFF, 5, 16)
    else:
        raise NotLinkable(f"relocation R_AARCH64_{kind} is not applied")
    struct.pack_into("<I", data, offset, word)


@dataclass
class _Linking:
    """One link in progress: the image, the addresses the layout pinned, what is linked so far, where each
    section's next stub goes (object index, section) and the stub each undefined symbol got."""

    image: Image
    pinned: dict[str, int]
    linked: Linked = field(default_factory=Linked)
    stub_next: dict[tuple[int, str], int] = field(default_factory=dict)
    stub_of: dict[tuple[int, str, str], int] = field(default_factory=dict)

    def external(self, name: str, index: int, section: str) -> int:
        """The address of a symbol object `index` does not define, referenced from its `section`."""
        if name in self.image.globals:
            return self.image.globals[name]
        if symbol_base(name) in self.pinned:
            return self.pinned[symbol_base(name)]
        key = (index, section, name)
        if key not in self.stub_of:
            address = self.stub_next[index, section]
            self.stub_next[index, section] = address + 4
            self.stub_of[key] = address
            self.linked.stubs[address] = name
        return self.stub_of[key]


def link(image: Image, objects: list[Path], pinned: dict[str, int]) -> Linked:
    """Every allocated section of every object at its image address, relocated."""
    linking = _Linking(image, pinned)
    linked, stub_next = linking.linked, linking.stub_next
    for index, path in enumerate(objects):
        with path.open("rb") as handle:
            elf = ELFFile(handle)
            names = {i: elf.get_section(i).name for i in range(elf.num_sections())}
            bases: dict[str, int] = {}
            datas: dict[str, bytearray] = {}
            for section in elf.iter_sections():
                if not section["sh_flags"] & SH_FLAGS.SHF_ALLOC or not section["sh_size"]:
                    continue
                try:
                    base = image.section_base(index, section.name)
                except KeyError:
                    continue  # a section the lift does not keep (nothing the path runs or reads)
                raw = bytearray(section["sh_size"]) if section["sh_type"] == "SHT_NOBITS" else bytearray(section.data())
                bases[section.name], datas[section.name] = base, raw
                linked.chunks.append((base, raw))
                stub_next[index, section.name] = (base + len(raw) + STUB_GAP + 0xFFF) & ~0xFFF
            for rela in elf.iter_sections():
                if not isinstance(rela, RelocationSection):
                    continue
                target = names.get(rela["sh_info"], "")
                if target not in datas:
                    continue
                symtab = elf.get_section(rela["sh_link"])
                assert isinstance(symtab, SymbolTableSection)
                for reloc in rela.iter_relocations():
                    symbol = symtab.get_symbol(reloc["r_info_sym"])
                    kind = _kind(reloc["r_info_type"])
                    if kind == "NONE":
                        continue
                    shndx = symbol["st_shndx"]
                    if shndx == "SHN_ABS":
                        value = symbol["st_value"]
                    elif isinstance(shndx, int):
                        where = names.get(shndx, "")
                        if where not in bases:
                            continue  # relocated against a section the run does not load
                        value = bases[where] + symbol["st_value"]
                    else:
                        value = linking.external(symbol.name, index, target)
                    place = bases[target] + reloc["r_offset"]
                    s_a = (value + reloc["r_addend"]) & M64
                    if not _in_range(kind, s_a, place):
                        veneer = stub_next[index, target]
                        stub_next[index, target] = veneer + 4
                        linked.far[veneer] = s_a
                        s_a = veneer
                    _patch(datas[target], reloc["r_offset"], kind, s_a, place)
    for alias, real, size in image.aliases:
        for base, raw in list(linked.chunks):
            if base == real:
                linked.chunks.append((alias, raw[:size]))
    return linked


_KINDS = {
    0: "NONE", 256: "NONE", 257: "ABS64", 258: "ABS32", 259: "ABS16", 260: "PREL64", 261: "PREL32", 262: "PREL16",
    263: "MOVW_UABS_G0", 264: "MOVW_UABS_G0_NC", 265: "MOVW_UABS_G1", 266: "MOVW_UABS_G1_NC", 267: "MOVW_UABS_G2",
    268: "MOVW_UABS_G2_NC", 269: "MOVW_UABS_G3", 273: "LD_PREL_LO19", 274: "ADR_PREL_LO21",
    275: "ADR_PREL_PG_HI21", 276: "ADR_PREL_PG_HI21_NC", 277: "ADD_ABS_LO12_NC", 278: "LDST8_ABS_LO12_NC",
    279: "TSTBR14", 280: "CONDBR19", 282: "JUMP26", 283: "CALL26", 284: "LDST16_ABS_LO12_NC",
    285: "LDST32_ABS_LO12_NC", 286: "LDST64_ABS_LO12_NC", 299: "LDST128_ABS_LO12_NC",
}


def _kind(number: int) -> str:
    return _KINDS.get(number, f"type {number}")
