"""`entry-verify crosscheck FILE.s...`: the Lark front end against GNU as + capstone, instruction by
instruction. Exit 0 when every code section agrees, 1 when something differs, 2 on input errors."""

from __future__ import annotations

import argparse
from collections import Counter
from functools import cache
from pathlib import Path

from verifier.objfront.crosscheck import Difference, FileReport, crosscheck_file
from verifier.util.errors import UserError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("files", nargs="+", metavar="FILE.s", help="GNU as source (kernel .s or gcc output)")
    parser.add_argument(
        "--as",
        dest="as_cmd",
        default="aarch64-linux-gnu-as",
        metavar="CMD",
        help="GNU assembler for AArch64 (default: aarch64-linux-gnu-as)",
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


def run(args: argparse.Namespace) -> int:
    if args.show < 0:
        raise UserError("--show must not be negative")
    ok = True
    for path in args.files:
        if not Path(path).is_file():
            raise UserError("no such file", path)
        report = crosscheck_file(path, args.as_cmd)
        _print_report(report, args.show)
        ok = ok and report.ok
    return 0 if ok else 1


SUBCOMMAND = (
    "compare the Lark lift of .s files with GNU as + capstone, instruction by instruction",
    add_arguments,
    run,
)
