"""Census: which canonical mnemonics occur in assembly files, and which of them the semantics cannot run.

Each instruction is lifted, canonicalised, and executed once on a fully symbolic state, so an operand form
the semantics rejects shows up as well as a missing mnemonic.

    python -m verifier.semantics.census FILE.s...
"""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import z3
from typing_extensions import override

from verifier.frontend.assembler import lift_file
from verifier.ir.canon import canonical
from verifier.ir.program import Insn, Reloc, Target
from verifier.semantics.state import BV, Memory, Region, State
from verifier.semantics.table import ExecContext, Unsupported, execute


class SymbolicContext(ExecContext):
    """An ExecContext where every address, relocation and loaded value is an unconstrained constant."""

    def __init__(self) -> None:
        self.pc: BV = z3.BitVec("pc", 64)
        self.next_pc: BV = self.pc + 4

    @override
    def address(self, target: Target) -> BV:
        return z3.BitVec(f"&{target}", 64)

    @override
    def reloc(self, reloc: Reloc) -> BV:
        return z3.BitVec(f"{reloc}", 64)

    @override
    def load(self, state: State, addr: BV, size: int) -> BV:
        return z3.FreshConst(z3.BitVecSort(8 * size), "load")

    @override
    def store(self, state: State, addr: BV, value: BV, size: int) -> None:
        pass


def symbolic_state() -> State:
    """A state with every register, flag and system register unconstrained."""

    def initial(region: Region, word: int, epoch: int) -> BV:
        return z3.BitVec(f"mem[{region}+{word}]@{epoch}", 64)

    return State(
        x=[z3.BitVec(f"x{i}", 64) for i in range(31)],
        sp_el1=z3.BitVec("sp_el1", 64),
        sp_el0=z3.BitVec("sp_el0", 64),
        nzcv=z3.BitVec("nzcv", 4),
        daif=z3.BitVec("daif", 4),
        pstate_ss=z3.BitVec("ss", 1),
        sysregs={},
        memory=Memory(initial=initial),
        fresh_sysreg=lambda enc: z3.BitVec(f"sysreg{enc:#x}", 64),
    )


@dataclass
class Census:
    counts: Counter[str] = field(default_factory=Counter)
    undecoded: int = 0
    unsupported: dict[str, list[str]] = field(default_factory=dict)  # mnemonic -> reasons (first few)

    def add(self, insn: Insn) -> None:
        self.counts[insn.mnemonic] += 1
        effect = execute(insn, symbolic_state(), SymbolicContext())
        if isinstance(effect, Unsupported):
            reasons = self.unsupported.setdefault(insn.mnemonic, [])
            if len(reasons) < 3 and effect.reason not in reasons:
                reasons.append(effect.reason)


def census(paths: Iterable[str | Path]) -> Census:
    result = Census()
    for path in paths:
        program = lift_file(path)
        for section in program.sections.values():
            for item in section.items:
                if item.kind == "undecoded":
                    result.undecoded += 1
                elif item.kind == "insn" and item.insn is not None:
                    result.add(canonical(item.insn))
    return result


def report(result: Census, paths: list[str]) -> str:
    lines = ["# canonical mnemonic census: python -m verifier.semantics.census FILE.s...", "# files:"]
    lines += [f"#   {p}" for p in paths]
    total = sum(result.counts.values())
    lines.append(f"# {total} instructions, {len(result.counts)} mnemonics, {result.undecoded} undecoded items")
    for mnemonic, count in sorted(result.counts.items(), key=lambda kv: (-kv[1], kv[0])):
        mark = "  UNSUPPORTED" if mnemonic in result.unsupported else ""
        lines.append(f"{count:6d}  {mnemonic}{mark}")
    if result.unsupported:
        lines.append("# unsupported:")
        for mnemonic, reasons in sorted(result.unsupported.items()):
            lines += [f"#   {mnemonic}: {reason}" for reason in reasons]
    else:
        lines.append("# unsupported: none")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    paths = list(sys.argv[1:] if argv is None else argv)
    if not paths:
        print("usage: python -m verifier.semantics.census FILE.s...", file=sys.stderr)
        return 2
    result = census(paths)
    sys.stdout.write(report(result, paths))
    return 1 if result.unsupported else 0


if __name__ == "__main__":
    sys.exit(main())
