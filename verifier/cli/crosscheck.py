"""`entry-verify crosscheck FILE.s...`: the Lark front end against an assembler + capstone, instruction by
instruction. The assembler is the one the kernel build used, as its Kbuild .cmd file says (GNU as for GCC
builds, LLVM's for clang builds), unless --as or --llvm says otherwise. Exit 0 when every code section
agrees, 1 when something differs, 2 on input errors."""

from __future__ import annotations

import argparse
from collections import Counter
from functools import cache
from pathlib import Path

from verifier.cli.toolchain import add_llvm_option
from verifier.kernel.cmdfile import assembler_for
from verifier.objfront.assemblers import Assembler
from verifier.objfront.crosscheck import Difference, FileReport, crosscheck_file
from verifier.util.errors import UserError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("files", nargs="+", metavar="FILE.s", help="GNU as source (kernel .s, gcc or clang output)")
    parser.add_argument(
        "--as",
        dest="as_cmd",
        metavar="CMD",
        help="assemble with CMD, flags included: GNU as, clang (run as `CMD -c -x assembler`) or llvm-mc, "
        "told apart by the program's name (default: what the file's Kbuild .cmd file says the build used, "
        "else aarch64-linux-gnu-as)",
    )
    add_llvm_option(
        parser,
        "assemble with LLVM's integrated assembler: clang, or clang-19 for --llvm=-19, /path/bin/clang for "
        "--llvm=/path/bin/ (LLVM= values as Kbuild takes them), with the target flags of the .cmd file",
    )
    parser.add_argument(
        "--show", type=int, default=10, metavar="N", help="show the first N differences per file (default 10)"
    )


@cache
def _lines(path: str) -> list[str]:
    try:
        return Path(path).read_text(errors="replace").splitlines()
    except OSError:
        return []


def _source(diff: Difference) -> str:
    item = diff.lark or diff.lark_cover or diff.lark_near
    if item is None or item.src is None:
        return "(no source location)"
    src = item.src
    lines = _lines(src.asm_file)
    text = lines[src.asm_line - 1].strip() if 0 < src.asm_line <= len(lines) else ""
    where = f"{src.short()}  [{Path(src.asm_file).name}:{src.asm_line}]"
    if item is diff.lark_near:
        where = f"after the item at {diff.section}+{item.offset:#x} from " + where
    return f"{where}  {text}" if text else where


def _print_report(report: FileReport, show: int) -> None:
    print(f"{report.path}: {'agree' if report.ok else 'DIFFER'}")
    print(f"  assembler: {report.assembler}")
    print(f"  {'section':<24} {'lark':>6} {'object':>6} {'agree':>6} {'differ':>6}")
    for s in report.sections:
        print(f"  {s.name:<24} {s.lark_count:>6} {s.obj_count:>6} {s.agree:>6} {s.differ:>6}")
    diffs = [d for s in report.sections for d in s.differences]
    kinds = Counter(d.kind for d in diffs)
    for kind, count in kinds.most_common():
        print(f"  {count:>6}  {kind}")
    for diff in diffs[:show]:
        print(f"  {diff.section}+{diff.offset:#x}:{' ' + diff.note if diff.note else ''}")
        print(f"    lark:   {diff.render(diff.lark, diff.lark_cover)}")
        print(f"    object: {diff.render(diff.obj)}")
        print(f"    at {_source(diff)}")
    if len(diffs) > show:
        print(f"  ... {len(diffs) - show} more differences (--show N)")


def _assembler(path: Path, args: argparse.Namespace) -> Assembler:
    if args.as_cmd is not None:
        return Assembler.parse(args.as_cmd, "--as")
    llvm = args.llvm if isinstance(args.llvm, str) else ("1" if args.llvm else None)
    return assembler_for(path, llvm)


def run(args: argparse.Namespace) -> int:
    if args.show < 0:
        raise UserError("--show must not be negative")
    if args.as_cmd is not None and args.llvm:
        raise UserError("--as and --llvm both name the assembler; give one")
    ok = True
    for name in args.files:
        path = Path(name)
        if not path.is_file():
            raise UserError("no such file", name)
        report = crosscheck_file(path, _assembler(path, args))
        _print_report(report, args.show)
        ok = ok and report.ok
    return 0 if ok else 1


SUBCOMMAND = (
    "compare the Lark lift of .s files with the assembler's object (GNU as or LLVM, as the build used) "
    "+ capstone, instruction by instruction",
    add_arguments,
    run,
)
