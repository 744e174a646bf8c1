"""`entry-verify prove [FILE.s...]`: prove the built-in obligations on lifted entry code."""

from __future__ import annotations

import argparse
import json
import os
from dataclasses import dataclass, replace
from pathlib import Path

from verifier.engine.explore import Options
from verifier.proof.config import (
    BUNDLED_CALLEES,
    BUNDLED_CONTRACTS,
    BUNDLED_SUBJECTS,
    DEFAULT_ASSUMPTIONS,
    DEFAULT_WAIVERS,
    ProveConfig,
    parse_caps,
)
from verifier.proof.run import Report, exit_status, prove
from verifier.report.html import render_html
from verifier.report.progress import for_stream
from verifier.report.text import render_text, summary
from verifier.spec.contracts import BuildFacts
from verifier.spec.obligations import OBLIGATIONS
from verifier.spec.slots import ALL_SLOTS, slot_by_name
from verifier.util.errors import UserError
from verifier.util.outputs import write_output

EPILOG = f"""obligations: {", ".join(OBLIGATIONS)} (see proofs/ and README).
exit status: 0 every result PROVED or WAIVED and closed (resting on nothing unchecked), 1 some VIOLATED, 3 some
UNKNOWN and none VIOLATED, 4 all PROVED or WAIVED but some under hypotheses (0 with --accept-hypotheses),
2 usage or input error.
With no FILE, the bundled subjects in asm/ are proved."""


def add_common(parser: argparse.ArgumentParser) -> None:
    add_proof_options(parser)
    parser.add_argument("--format", choices=("text", "json", "html"), default="text",
                        help="text (default), json, or html: one self-contained page (the verdict matrix, each "
                             "counterexample as a timeline picture); html needs -o FILE")
    parser.add_argument("--verbose", "-v", action="store_true",
                        help="text: every step of each counterexample's path, every assumption and contract check "
                             "(default: the path's events, the standing assumptions counted)")
    parser.add_argument("--output", "-o", metavar="F", help="write the report to F (default: stdout)")
    parser.add_argument("--accept-hypotheses", action="store_true",
                        help="exit 0, not 4, when every result is PROVED or WAIVED but some rest on pending "
                        "hypotheses (unchecked contract clauses, trusted contracts; each is listed)")
    add_jobs(parser)


def add_proof_options(parser: argparse.ArgumentParser) -> None:
    """What to prove and under which assumptions: shared by prove, kernel and series."""
    parser.add_argument("--contracts", metavar="F", help="contracts of functions not lifted (TOML)")
    parser.add_argument("--assumptions", metavar="F", default=str(DEFAULT_ASSUMPTIONS),
                        help="assumptions about the interrupted context (default: proofs/assumptions.toml)")
    parser.add_argument("--waivers", metavar="F", default=str(DEFAULT_WAIVERS),
                        help="waivers for deliberate violations; 'none' for no waivers")
    parser.add_argument("--cap", action="append", default=[], metavar="NAME=on|off",
                        help="pin a CPU capability (name from cpucaps.h, or its number); default: all combinations")
    parser.add_argument("--vector", action="append", default=[], metavar="SLOT",
                        help="only these vector slots (e.g. el0_64_sync); default: all 16")
    parser.add_argument("--ec", action="append", default=[], metavar="N", type=_exception_class,
                        help="only this exception class (ESR_EL1.EC, e.g. 0x24 or 36) of the synchronous slots; "
                        "repeat for more; default: all 64")
    parser.add_argument("--loop-bound", type=int, default=Options.loop_bound, metavar="N",
                        help="backward jumps to one target per path and call context before the path is "
                        f"UNKNOWN (default {Options.loop_bound})")
    parser.add_argument("--policy", metavar="F",
                        help="also check a policy's rules (e.g. proofs/policies/proposed-2020.policy)")
    parser.add_argument("--reading", action="append", default=[], metavar="RULE",
                        help="use this non-default reading of an open point of the policy (a rule id)")
    parser.add_argument("--check-contracts", action="store_true",
                        help="check each contract a proof used against its function's code (the default; with "
                        "`kernel`, the files defining the callees are built too): a contract its code violates "
                        "makes the verdicts that used it UNKNOWN")
    parser.add_argument("--trust-contracts", action="store_true",
                        help="do not check the contracts (faster): each one used is listed as trusted, not checked")
    parser.add_argument("--no-unicorn", dest="unicorn", action="store_false",
                        help="do not confirm the counterexamples on Unicorn (by default each is run there from the "
                        "assembler's objects, in lockstep with the replay; one Unicorn does not reproduce is "
                        "UNKNOWN, never VIOLATED)")
    parser.add_argument("--contract-depth", type=int, default=1, metavar="N",
                        help="also check the callees' own callees' contracts down to depth N where their code is "
                        "in the same files (default 1: theirs are trusted and listed)")


def add_jobs(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-j", "--jobs", type=int, default=os.cpu_count() or 1, metavar="N",
                        help="parallel jobs: proof worker processes (one vector slot each) and make jobs "
                        "(default: the number of CPUs)")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = EPILOG
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("files", nargs="*", metavar="FILE.s", help="lifted inputs (default: asm/*.s)")
    parser.add_argument("--callees", action="append", default=[], metavar="F.s",
                        help="assembly defining functions the inputs call, whose contracts are checked against "
                        "this code (repeatable; default with no FILE: asm/callees/*.s)")
    add_common(parser)


def _exception_class(text: str) -> int:
    try:
        value = int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 <= value < 64:
        raise argparse.ArgumentTypeError(f"{text}: an exception class is 0..63")
    return value


@dataclass(frozen=True)
class TreeFacts:
    """What a kernel tree tells a proof beyond its files: the capability names, the build's facts, the tree."""

    cap_names: dict[int, str]
    build: BuildFacts
    root: str


def config_from(args: argparse.Namespace, files: list[Path], contracts: Path, tree: TreeFacts | None = None
                ) -> ProveConfig:
    """The proof's configuration from the command line; `tree`: the kernel tree the files were built from."""
    cap_names = tree.cap_names if tree is not None else {}
    build = tree.build if tree is not None else None
    root = tree.root if tree is not None else None
    slots = tuple(slot_by_name(v) for v in args.vector) if args.vector else ALL_SLOTS
    if args.loop_bound < 1:
        raise UserError("--loop-bound must be at least 1")
    waivers = None if args.waivers == "none" else Path(args.waivers)
    if args.contract_depth < 1:
        raise UserError("--contract-depth must be at least 1")
    if args.check_contracts and args.trust_contracts:
        raise UserError("--check-contracts and --trust-contracts contradict each other")
    return ProveConfig(files=files, contracts=contracts, assumptions=Path(args.assumptions), waivers=waivers,
                       caps=parse_caps(args.cap, cap_names), cap_names=cap_names, slots=slots,
                       classes=tuple(sorted(set(args.ec))),
                       options=Options(loop_bound=args.loop_bound), build=build or BuildFacts(), root=root,
                       policy=Path(args.policy) if args.policy else None, readings=tuple(args.reading),
                       contract_depth=0 if args.trust_contracts else args.contract_depth,
                       confirm=args.unicorn)


def emit(report: Report, args: argparse.Namespace) -> int:
    if args.format == "html":
        write_output(render_html(report, _title(args)), args.output)
        return report.exit_status(args.accept_hypotheses)
    text = json.dumps(report.json(), indent=1) + "\n" if args.format == "json" else render_text(report, args.verbose)
    write_output(text, args.output)
    return report.exit_status(args.accept_hypotheses)


def _title(args: argparse.Namespace) -> str:
    tree = getattr(args, "tree", None)
    return f"kernel {tree}" if tree else "prove " + " ".join(getattr(args, "files", []) or ["(bundled subjects)"])


def proved(config: ProveConfig, jobs: int, heading: str | None = None) -> Report:
    """`prove(config)` with the run's progress on stderr (a bar on a terminal, a line per slot otherwise)."""
    progress = for_stream()
    try:
        if heading:
            progress.note(heading)
        return prove(config, progress, max(jobs, 1))
    finally:
        progress.close()


def run(args: argparse.Namespace) -> int:
    files = [Path(f) for f in args.files] or BUNDLED_SUBJECTS
    callees = [Path(f) for f in args.callees] or ([] if args.files else BUNDLED_CALLEES)
    for path in [*files, *callees]:
        if not path.is_file():
            raise UserError("no such file", str(path))
    contracts = Path(args.contracts) if args.contracts else BUNDLED_CONTRACTS
    if not args.files and len(files) > 1:
        # the bundled subjects are separate kernels: prove each on its own
        reports = []
        for path in files:
            report = proved(replace(config_from(args, [path], contracts), callees=callees), args.jobs, f"== {path}")
            reports.append(report)
        merged = Report([r for rep in reports for r in rep.results], reports[0].assumptions,
                        [i for rep in reports for i in rep.inputs],
                        {"files": {str(p): rep.stats for p, rep in zip(files, reports, strict=True)}})
        if args.format == "text":
            text = "".join(f"== {p}\n" + render_text(rep, args.verbose) for p, rep in zip(files, reports, strict=True))
            text += f"== all {len(files)} files\nsummary: {summary(merged.results)}\n"
            write_output(text, args.output)
            return exit_status([r for rep in reports for r in rep.results], args.accept_hypotheses)
        return emit(merged, args)
    return emit(proved(replace(config_from(args, files, contracts), callees=callees), args.jobs), args)


SUBCOMMAND = ("prove the return obligations on every vector slot (default: the bundled subjects)", add_arguments, run)
