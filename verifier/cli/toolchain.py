"""`--llvm[=LLVM]`, the option kernel, kernel-asm, series and crosscheck share: a value with Kbuild's meaning;
and Kbuild's VAR=VALUE arguments (O=, CROSS_COMPILE=, LLVM=, ARCH=) for kernel and kernel-asm."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from verifier.kernel import kbuild
from verifier.util.errors import UserError


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


KBUILD_VARIABLES = ("O", "ARCH", "CROSS_COMPILE", "LLVM")


def add_kbuild_variables(parser: argparse.ArgumentParser) -> None:
    """`entry-verify kernel --tree T O=DIR LLVM=1`: Kbuild's own variables, as `make` takes them."""
    parser.add_argument("kbuild_variables", nargs="*", metavar="VAR=VALUE",
                        help="Kbuild variables, as make takes them: O=DIR (a configured build directory, as "
                             "--build-dir), CROSS_COMPILE=PREFIX (as --cross), LLVM=1|-19|DIR/ (as --llvm), "
                             "ARCH=arm64 (the only one); $KBUILD_OUTPUT, $CROSS_COMPILE and $LLVM are read too")


def apply_kbuild_variables(args: argparse.Namespace) -> None:
    """Fold VAR=VALUE arguments into the options they stand for; an unknown one, or two names for one
    thing, is a usage error."""
    for text in args.kbuild_variables:
        name, equals, value = text.partition("=")
        if not equals or name not in KBUILD_VARIABLES:
            raise UserError(f"{text}: not a Kbuild variable this tool takes ({', '.join(KBUILD_VARIABLES)}, as "
                            "VAR=VALUE)")
        if name == "ARCH" and value != "arm64":
            raise UserError(f"ARCH={value}: entry-verify verifies arm64 only")
        if name == "O":
            if args.build_dir is not None:
                raise UserError("O= and --build-dir both name the build directory: give one")
            args.build_dir = Path(value)
        elif name == "CROSS_COMPILE":
            if args.cross:
                raise UserError("CROSS_COMPILE= and --cross both name the cross compiler: give one")
            args.cross = value
        elif name == "LLVM":
            try:
                args.llvm = llvm_value(value)
            except argparse.ArgumentTypeError as err:
                raise UserError(f"LLVM={value}: {err}") from None


def add_kbuild_options(parser: argparse.ArgumentParser, work_dir: bool = True) -> None:
    parser.add_argument("--build-dir", type=Path,
                        help="your configured Kbuild output directory (what O= names): its .config is the "
                             "configuration, copied into the tool's own build directory; nothing in it is "
                             "written. Default: $KBUILD_OUTPUT, else --config")
    parser.add_argument("--config", help="`defconfig` (the default) or a .config file (only read)")
    if work_dir:
        parser.add_argument("--work-dir", type=Path,
                            help="where the tool runs Kbuild (its own output directory, written and reused); "
                                 "default: $ENTRY_VERIFY_CACHE/kbuild/<tree>-<hash>[-llvm..][-config-<sha>]")
    parser.add_argument("--cross", help=f"CROSS_COMPILE prefix (default: $CROSS_COMPILE or {kbuild.DEFAULT_CROSS})")
    add_llvm_option(parser)
