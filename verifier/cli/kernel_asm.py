"""`entry-verify kernel-asm`: build the entry code's assembly from a kernel tree with Kbuild."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from verifier.cli.toolchain import add_kbuild_options, add_kbuild_variables, apply_kbuild_variables
from verifier.kernel import kbuild
from verifier.util.errors import UserError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--tree", required=True, type=Path, help="kernel source tree (only read, never written)"
    )
    parser.add_argument(
        "--files",
        help="comma-separated sources relative to the tree (a bare name means arch/arm64/kernel/NAME); "
        "default: " + ",".join(kbuild.DEFAULT_FILES),
    )
    add_kbuild_options(parser)
    add_kbuild_variables(parser)
    parser.add_argument(
        "-j", "--jobs", type=int, default=os.cpu_count() or 1, metavar="N", help="parallel make jobs"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="show make's output on stderr")


def run(args: argparse.Namespace) -> int:
    if args.jobs < 1:
        raise UserError("-j must be at least 1")
    apply_kbuild_variables(args)
    tree = kbuild.check_tree(args.tree)
    toolchain = kbuild.toolchain_from(args.cross, args.llvm)
    where = kbuild.where_to_build(tree, toolchain, args.config, kbuild.configured_dir(args.build_dir), args.work_dir)
    build_dir = where.build_dir
    files = kbuild.DEFAULT_FILES
    if args.files is not None:
        files = tuple(f for f in args.files.split(",") if f.strip())
        if not files:
            raise UserError("--files: no files given")
    job = kbuild.KbuildJob(
        tree=tree,
        build_dir=build_dir,
        config=where.config,
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
