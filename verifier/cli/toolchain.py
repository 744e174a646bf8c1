"""`--llvm[=LLVM]`, the option kernel, kernel-asm, series and crosscheck share: a value with Kbuild's meaning."""

from __future__ import annotations

import argparse
import re


def llvm_value(text: str) -> str:
    """An LLVM= value as Kbuild takes it: 1, a version suffix (-19) or a directory (/usr/lib/llvm-19/bin/).
    Anything else is refused, so `--llvm FILE.s` cannot swallow a file name."""
    if text == "1" or re.fullmatch(r"-[0-9][0-9.]*", text) or text.endswith("/"):
        return text
    raise argparse.ArgumentTypeError(f"{text!r} is no LLVM= value (1, -19 or /path/to/llvm/bin/); write --llvm=VALUE")


def add_llvm_option(parser: argparse.ArgumentParser, help_text: str | None = None) -> None:
    # nargs="?": a bare --llvm is True (LLVM=1, or $LLVM), --llvm=-19 is that value (clang-19, ...)
    parser.add_argument(
        "--llvm",
        nargs="?",
        const=True,
        default=False,
        type=llvm_value,
        metavar="LLVM",
        help=help_text
        or "build with LLVM: bare, LLVM=1 (or $LLVM, which also implies it); --llvm=-19 for clang-19 and friends, "
        "--llvm=/path/bin/ for the tools there, as Kbuild's LLVM= means it",
    )
