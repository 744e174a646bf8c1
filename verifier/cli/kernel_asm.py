"""`entry-verify kernel-asm`: build the entry code's assembly from a kernel tree with Kbuild."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from verifier.cli.toolchain import add_llvm_option
from verifier.kernel import kbuild
from verifier.util.errors import UserError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--tree", required=True, type=Path, help="kernel source tree (only read, never written)"
    )
    parser.add_argument(
        "--config",
        default="defconfig",
        help="`defconfig` (default) or a .config file, which is copied in and run through olddefconfig",
    )
    parser.add_argument(
        "--build-dir",
        type=Path,
        help="Kbuild output dir (O=), reused across runs; default: "
        "$ENTRY_VERIFY_CACHE/kbuild/<tree>-<hash>, with -llvm-19 after it for LLVM=-19 "
        "(cache defaults to ~/.cache/entry-verify)",
    )
    parser.add_argument(
        "--cross",
        help=f"CROSS_COMPILE prefix; default: $CROSS_COMPILE or {kbuild.DEFAULT_CROSS}",
    )
    parser.add_argument(
        "--files",
        help="comma-separated sources relative to the tree (a bare name means arch/arm64/kernel/NAME); "
        "default: " + ",".join(kbuild.DEFAULT_FILES),
    )
    add_llvm_option(parser)
    parser.add_argument(
        "-j", "--jobs", type=int, default=os.cpu_count() or 1, metavar="N", help="parallel make jobs"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="show make's output on stderr")


def run(args: argparse.Namespace) -> int:
    if args.jobs < 1:
        raise UserError("-j must be at least 1")
    tree = kbuild.check_tree(args.tree)
    toolchain = kbuild.toolchain_from(args.cross, args.llvm)
    build_dir = kbuild.check_build_dir(tree, args.build_dir or kbuild.default_build_dir(tree, toolchain, args.config))
    files = kbuild.DEFAULT_FILES
    if args.files is not None:
        files = tuple(f for f in args.files.split(",") if f.strip())
        if not files:
            raise UserError("--files: no files given")
    job = kbuild.KbuildJob(
        tree=tree,
        build_dir=build_dir,
        config=args.config,
        toolchain=toolchain,
        files=files,
        jobs=args.jobs,
        verbose=args.verbose,
    )
    for path in kbuild.build_asm(job):
        print(path)
    return 0


SUBCOMMAND = (
    "build the assembly of the entry code (entry.S, entry-common.c, debug-monitors.c) with Kbuild, "
    "out of tree, and print the .s paths",
    add_arguments,
    run,
)
