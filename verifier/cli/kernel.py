"""`entry-verify kernel --tree DIR`: build the entry assembly with Kbuild (out of tree), then prove."""

from __future__ import annotations

import argparse
from pathlib import Path

from verifier.cli.prove import EPILOG, TreeFacts, add_common, config_from, emit, proved
from verifier.cli.toolchain import add_kbuild_options, add_kbuild_variables, apply_kbuild_variables
from verifier.kernel import kbuild
from verifier.kernel.cmdfile import assembler_for
from verifier.kernel.info import kernel_info
from verifier.util.errors import UserError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = EPILOG.split("\nWith no FILE")[0]
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("--tree", required=True, type=Path, help="kernel source tree (only read, never written)")
    add_kbuild_options(parser)
    add_kbuild_variables(parser)
    add_common(parser)


def run(args: argparse.Namespace) -> int:
    apply_kbuild_variables(args)
    tree = kbuild.check_tree(args.tree)
    toolchain = kbuild.toolchain_from(args.cross, args.llvm)
    where = kbuild.where_to_build(tree, toolchain, args.config, kbuild.configured_dir(args.build_dir), args.work_dir)
    build_dir = where.build_dir
    job = kbuild.KbuildJob(tree=tree, build_dir=build_dir, config=where.config, toolchain=toolchain,
                           jobs=max(args.jobs, 1))
    files = kbuild.build_asm(job)
    info = kernel_info(tree, build_dir)
    contracts = Path(args.contracts) if args.contracts else info.contracts()
    if not files:
        raise UserError("Kbuild produced no assembly")
    config = config_from(args, files, contracts, TreeFacts(info.cap_names, info.facts(), str(tree.resolve())))
    llvm = args.llvm if isinstance(args.llvm, str) else ("1" if args.llvm else None)
    config.assemblers = [assembler_for(path, llvm).argv for path in files]  # as the build assembled them
    if config.contract_depth:
        ring = kbuild.build_callee_ring(job, files)
        config.callees, config.callee_missing = ring.outputs, ring.missing
    return emit(proved(config, args.jobs), args)


SUBCOMMAND = ("build a kernel tree's entry assembly with Kbuild and prove it", add_arguments, run)
