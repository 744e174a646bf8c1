"""`entry-verify lift FILE.s [--json]`: lift a file with the Lark front end and show the IR."""

from __future__ import annotations

import argparse
import json
import sys

from verifier.frontend.assembler import lift_file
from verifier.ir.program import Program
from verifier.ir.serialize import program_json


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("files", nargs="+", metavar="FILE.s", help="GNU as source (kernel .s or gcc output)")
    parser.add_argument("--json", action="store_true", help="print the whole IR as JSON")
    parser.add_argument("--listing", action="store_true", help="print every item, not just the summary")
    parser.add_argument("--root", help="kernel tree the sources came from (default: guessed from markers)")


def _summary(program: Program) -> str:
    lines = [f"{program.path}:"]
    for section in program.sections.values():
        kinds = {"insn": 0, "data": 0, "undecoded": 0}
        for item in section.items:
            kinds[item.kind] += 1
        lines.append(
            f"  {section.name:<24} {section.size:>7} bytes  {kinds['insn']:>5} insns"
            f"  {kinds['data']:>5} data  {kinds['undecoded']:>3} undecoded"
        )
    lines.append(f"  {len(program.alternatives)} alternative sites, {len(program.symbols)} symbols")
    for item in (i for s in program.sections.values() for i in s.items if i.kind == "undecoded"):
        where = item.src.short() if item.src else ""
        lines.append(f"  undecoded at {where}: {item.reason}")
    return "\n".join(lines)


def _listing(program: Program) -> str:
    lines = []
    for section in program.sections.values():
        lines.append(f"{section.name}:")
        for item in section.items:
            what = str(item.insn) if item.insn else (item.reason or item.kind)
            if item.kind == "data":
                what = ".data " + (item.raw.hex() if item.raw else ", ".join(str(v) for v in item.data))
            where = item.src.short() if item.src else ""
            lines.append(f"  {item.offset:#07x}  {what:<48} {where}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    programs = [lift_file(path, args.root) for path in args.files]  # all parsed before anything is printed
    if args.json:
        json.dump([program_json(p) for p in programs], sys.stdout, indent=1)
        print()
    else:
        for program in programs:
            print(_listing(program) if args.listing else _summary(program))
    return 0


SUBCOMMAND = ("lift .s files into the IR and print a summary, a listing or JSON", add_arguments, run)
