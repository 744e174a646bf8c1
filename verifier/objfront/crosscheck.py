"""Cross-check the two front ends: the Lark lift of a `.s` file against capstone's decode of what an
assembler (GNU as, or LLVM's for a clang build; see verifier.objfront.assemblers) makes of the same file.
Both go through verifier.canon, so only real disagreements remain: a wrong layout (offsets), a wrong
operand, a wrong relocation target, or code one side sees as data.
"""

from __future__ import annotations

import bisect
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from verifier.frontend.assembler import lift_file
from verifier.ir.canon import canonical
from verifier.ir.program import Item, Program, Section
from verifier.objfront.assemblers import GNU_AS, Assembler, assemble
from verifier.objfront.lift import lift_object


@dataclass
class Difference:
    section: str
    offset: int
    lark: Item | None  # the assembler side's item at this offset (None: nothing, or data only)
    obj: Item | None
    note: str = ""
    lark_cover: Item | None = None  # the Lark item covering this offset, for its source location
    lark_near: Item | None = None  # else the Lark item just before it

    @property
    def kind(self) -> str:
        """A coarse category, so that a thousand differences read as a few causes."""
        if self.note.startswith("overlap"):
            return "overlapping items"
        if self.note.startswith("section missing"):
            return "section missing"
        a, b = self.lark, self.obj
        if a is None and b is None:
            return "other"
        if a is None:
            cover = self.lark_cover
            return "code only on the object side" + (" (data on the assembler side)" if cover else "")
        if b is None:
            return "code only on the assembler side"
        if a.kind != b.kind:
            return f"{a.kind} vs {b.kind}"
        if a.insn is not None and b.insn is not None and canonical(a.insn).mnemonic != canonical(b.insn).mnemonic:
            return "different instruction"
        return "different operands"

    def render(self, item: Item | None, other_cover: Item | None = None) -> str:
        if item is None:
            if other_cover is not None and other_cover.kind == "data":
                raw = other_cover.raw or b""
                shown = raw[:16].hex() + ("..." if len(raw) > 16 else "") if raw else "relocated"
                return f"data ({len(raw) or other_cover.size} bytes: {shown})"
            return "nothing"
        if item.kind == "undecoded":
            shown = item.raw.hex() if item.raw else "?"
            return f"undecoded {shown}: {item.reason}"
        if item.kind == "data":
            return f"data {item.raw.hex() if item.raw else ''}"
        assert item.insn is not None
        canon = canonical(item.insn)
        text = str(canon)
        return text if canon == item.insn else f"{text}   [as {item.insn}]"


@dataclass
class SectionReport:
    name: str
    lark_count: int = 0  # instructions (and undecoded words) on each side
    obj_count: int = 0
    agree: int = 0
    differ: int = 0
    differences: list[Difference] = field(default_factory=list)


@dataclass
class FileReport:
    path: str
    sections: list[SectionReport] = field(default_factory=list)
    assembler: str = ""  # the assembler the object side came from, as described to the user

    @property
    def ok(self) -> bool:
        return all(s.differ == 0 for s in self.sections)


def _code_items(section: Section | None) -> dict[int, Item]:
    return {} if section is None else {it.offset: it for it in section.items if it.kind != "data"}


def _overlaps(section: Section | None) -> list[Item]:
    """Items that start before the previous one ends (or share its offset): a layout error."""
    if section is None:
        return []
    out: list[Item] = []
    end = -1
    for item in sorted(section.items, key=lambda it: it.offset):
        if item.offset < end:
            out.append(item)
        end = max(end, item.offset + item.size)
    return out


def _before(section: Section | None, offset: int) -> Item | None:
    """The last item of `section` starting at or before `offset`."""
    if section is None or not section.items:
        return None
    items = sorted(section.items, key=lambda it: it.offset)
    i = bisect.bisect_right([it.offset for it in items], offset) - 1
    return items[i] if i >= 0 else None


def _cover(section: Section | None, offset: int) -> Item | None:
    """The item of `section` that contains byte `offset`, if any."""
    item = _before(section, offset)
    if item is not None and offset < item.offset + max(item.size, 1):
        return item
    return None


def _agree(a: Item, b: Item) -> bool:
    if a.kind == "undecoded" or b.kind == "undecoded":
        # Both unreadable: agree when the bytes (where the assembler side knows them) are the same.
        return a.kind == b.kind and (a.raw is None or b.raw is None or a.raw == b.raw)
    assert a.insn is not None and b.insn is not None
    return canonical(a.insn) == canonical(b.insn)


def compare_section(name: str, lark: Section | None, obj: Section | None) -> SectionReport:
    report = SectionReport(name)
    left, right = _code_items(lark), _code_items(obj)
    report.lark_count, report.obj_count = len(left), len(right)
    if lark is None or obj is None:
        missing = "assembler side" if lark is None else "object side"
        report.differ = max(len(left), len(right))
        first = min((left or right), default=0)
        report.differences.append(
            Difference(name, first, left.get(first), right.get(first), f"section missing on the {missing}")
        )
        return report
    for offset in sorted(set(left) | set(right)):
        a, b = left.get(offset), right.get(offset)
        if a is not None and b is not None and _agree(a, b):
            report.agree += 1
            continue
        report.differ += 1
        note = ""
        if a is not None and b is not None and a.size != b.size:
            note = f"sizes {a.size} and {b.size}"
        cover = a or _cover(lark, offset)
        near = None if cover else _before(lark, offset)
        report.differences.append(Difference(name, offset, a, b, note, cover, near))
    # A dict by offset hides two items at one offset; say so instead.
    for side, section in (("assembler", lark), ("object", obj)):
        for item in _overlaps(section):
            report.differ += 1
            lark_item, obj_item = (item, None) if side == "assembler" else (None, item)
            note = f"overlap: {side} side item overlaps the one before it"
            report.differences.append(
                Difference(name, item.offset, lark_item, obj_item, note, item if side == "assembler" else None)
            )
    report.differences.sort(key=lambda d: d.offset)
    return report


def compare_programs(path: str, lark: Program, obj: Program) -> FileReport:
    report = FileReport(path)
    names = [s.name for s in lark.code_sections()]
    names += [s.name for s in obj.code_sections() if s.name not in names]
    for name in names:
        report.sections.append(compare_section(name, lark.sections.get(name), obj.sections.get(name)))
    return report


def crosscheck_file(path: str | Path, assembler: Assembler | str = GNU_AS) -> FileReport:
    """Lift `path` both ways (the object goes to a temporary directory, never next to the input)."""
    if isinstance(assembler, str):
        assembler = Assembler.parse(assembler)
    lark = lift_file(path, dialect="gnu" if assembler.kind == "gnu" else "llvm")
    with tempfile.TemporaryDirectory(prefix="entry-verify-") as tmp:
        obj_path = assemble(path, Path(tmp) / "out.o", assembler)
        obj = lift_object(obj_path)
    report = compare_programs(str(path), lark, obj)
    report.assembler = assembler.describe()
    return report
