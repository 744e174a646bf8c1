"""`entry-verify series --tree DIR --range BASE..TIP` (or `--mbox FILE` / `--patches DIR` onto `--base`):
prove every commit of a patch series, and say which commit breaks or fixes what."""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

from verifier.cli.prove import add_jobs, add_proof_options
from verifier.cli.toolchain import add_kbuild_options
from verifier.kernel import kbuild
from verifier.report.progress import for_stream
from verifier.series.html import render_series_html
from verifier.series.junit import to_junit
from verifier.series.report import EXIT_STATUS_HELP, exit_status, render_markdown, render_text, to_json
from verifier.series.run import FORMAT, SeriesPlan, SeriesResult, collect, finish, run
from verifier.series.sarif import to_sarif
from verifier.spec.slots import ALL_SLOTS, slot_by_name
from verifier.util.errors import UserError
from verifier.util.files import read_json
from verifier.util.outputs import write_output

FORMATS = ("text", "markdown", "json", "sarif", "junit", "html")

EPILOG = f"""Each commit is built with Kbuild (O=, out of tree) in a scratch clone under the cache; the repository
given with --tree is only read. A commit whose lifted assembly is unchanged costs no proof, and results are
cached across runs (keyed by the lifted inputs, contracts, assumptions, waivers, policy and tool version).

{EXIT_STATUS_HELP}

examples:
  entry-verify series --tree ~/linux --range v6.1..my-series --policy proofs/policies/proposed-2020.policy
  entry-verify series --tree ~/linux --base v6.1 --mbox series.mbox --same-as v6.1 --format markdown
  entry-verify series --tree . --range origin/master..HEAD --fail-on new --format sarif -o entry.sarif
  entry-verify series ... --shard 2/4 -o shard2.json   (then: entry-verify merge shard*.json)"""


def add_output_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--format", choices=FORMATS, default=None,
                        help="text (default), markdown (for a review reply), json, sarif (2.1.0), junit, or html: "
                        "one self-contained page (commits x properties, each transition leading to its "
                        "counterexample's timeline); html needs -o FILE")
    parser.add_argument("--output", "-o", metavar="F", help="write the report to F (default: stdout)")
    parser.add_argument("--fail-on", choices=("any", "new", "none"), default=None,
                        help="exit 1 on any VIOLATED verdict in the series (the default), only on one the base "
                        "did not have (new), or never (none: the default with --same-as, whose check decides)")
    parser.add_argument("--accept-hypotheses", action="store_true",
                        help="do not fail (exit 4) on PROVED or WAIVED verdicts that rest on pending hypotheses")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = EPILOG
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("--tree", required=True, type=Path, help="kernel git repository (only read)")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--range", metavar="BASE..TIP", help="the commits after BASE up to TIP (first parents)")
    source.add_argument("--mbox", type=Path, metavar="FILE", help="a patch series as one mbox, applied with git am")
    source.add_argument("--patches", type=Path, metavar="DIR",
                        help="a directory of patches (git format-patch output, *.patch in name order)")
    parser.add_argument("--base", metavar="REV", default="HEAD", help="where --mbox/--patches apply (default HEAD)")
    parser.add_argument("--same-as", metavar="REV",
                        help="check that every commit keeps REV's verdicts and counterexample classes "
                        "(a 'no functional change' claim); exit 1 if not")
    parser.add_argument("--shard", metavar="I/N", help="do shard I of N of the proofs and write a shard document "
                        "for `entry-verify merge` (a CI job matrix runs the N shards)")
    parser.add_argument("--cache-dir", type=Path, metavar="DIR",
                        help=f"scratch clone, build dir, snapshots and results (default {kbuild.cache_dir()})")
    add_kbuild_options(parser, work_dir=False)
    add_proof_options(parser)
    add_output_options(parser)
    add_jobs(parser)


def _shard(text: str | None) -> tuple[int, int]:
    if text is None:
        return (1, 1)
    m = re.fullmatch(r"(\d+)/(\d+)", text)
    if not m or not 1 <= int(m.group(1)) <= int(m.group(2)):
        raise UserError(f"--shard {text}: expected I/N with 1 <= I <= N")
    return int(m.group(1)), int(m.group(2))


def plan_from(args: argparse.Namespace) -> SeriesPlan:
    base, tip, patches = args.base, None, []
    if args.range:
        if args.range.count("..") != 1 or "..." in args.range:
            raise UserError(f"--range {args.range}: expected BASE..TIP")
        base, tip = args.range.split("..")
        if not base or not tip:
            raise UserError(f"--range {args.range}: expected BASE..TIP")
    elif args.mbox:
        if not args.mbox.is_file():
            raise UserError("no such file", str(args.mbox))
        patches = [args.mbox]
    else:
        if not args.patches.is_dir():
            raise UserError("no such directory", str(args.patches))
        found = sorted(args.patches.glob("*.patch"))
        # `git format-patch --cover-letter`'s 0000-cover-letter.patch changes nothing: git am stops at it
        patches = [path for path in found if not _cover_letter(path)]
        if not patches:
            raise UserError("no *.patch files with a change in them" if found else "no *.patch files",
                            str(args.patches))
    if args.loop_bound < 1:
        raise UserError("--loop-bound must be at least 1")
    if args.contract_depth < 1:
        raise UserError("--contract-depth must be at least 1")
    if args.check_contracts and args.trust_contracts:
        raise UserError("--check-contracts and --trust-contracts contradict each other")
    for option in ("contracts", "assumptions", "policy", "waivers"):
        value = getattr(args, option)
        if value and not (option == "waivers" and value == "none") and not Path(value).is_file():
            raise UserError("no such file", value)
    return SeriesPlan(
        repo=args.tree, base=base, tip=tip, patches=patches, same_as=args.same_as,
        kconfig=kbuild.configuration(args.config, kbuild.configured_dir(args.build_dir)),
        toolchain=kbuild.toolchain_from(args.cross, args.llvm), make_jobs=max(args.jobs, 1),
        workers=max(args.jobs, 1), shard=_shard(args.shard), cache=args.cache_dir or kbuild.cache_dir(),
        contracts=Path(args.contracts) if args.contracts else None, assumptions=Path(args.assumptions),
        waivers=None if args.waivers == "none" else Path(args.waivers),
        policy=Path(args.policy) if args.policy else None, readings=tuple(args.reading), caps=tuple(args.cap),
        slots=tuple(slot_by_name(v) for v in args.vector) if args.vector else ALL_SLOTS,
        loop_bound=args.loop_bound, classes=tuple(sorted(set(args.ec))), confirm=args.unicorn,
        contract_depth=0 if args.trust_contracts else args.contract_depth)


def _cover_letter(path: Path) -> bool:
    """A patch file with no diff in it: a series' cover letter."""
    text = path.read_text(errors="replace")
    return "\ndiff --git " not in text and "\n--- " not in text


def emit(series: SeriesResult, args: argparse.Namespace, tree: Path) -> int:
    if args.fail_on is None:
        args.fail_on = "none" if series.reference else "any"
    series.accept_hypotheses = bool(getattr(args, "accept_hypotheses", False))
    fmt = args.format or "text"
    if fmt == "json":
        text = json.dumps(to_json(series, args.fail_on), indent=1) + "\n"
    elif fmt == "markdown":
        text = render_markdown(series, args.fail_on)
    elif fmt == "sarif":
        text = json.dumps(to_sarif(series, tree), indent=1) + "\n"
    elif fmt == "junit":
        text = to_junit(series)
    elif fmt == "html":
        text = render_series_html(series, args.fail_on)
    else:
        text = render_text(series, args.fail_on)
    write_output(text, args.output)
    return exit_status(series, args.fail_on)


def run_command(args: argparse.Namespace) -> int:
    plan = plan_from(args)
    if plan.shard != (1, 1) and args.format not in (None, "json"):
        raise UserError("--shard writes a shard document (JSON) for `entry-verify merge`; drop --format")
    progress = for_stream()
    try:
        if plan.shard != (1, 1):
            doc = collect(plan, progress)
            doc["repo"] = str(plan.repo.resolve())
            write_output(json.dumps(doc) + "\n", args.output)
            return 0
        series = run(plan, progress)
    finally:
        progress.close()
    return emit(series, args, plan.repo)


def merge_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = EXIT_STATUS_HELP
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("shards", nargs="+", type=Path, metavar="SHARD.json", help="outputs of series --shard I/N")
    parser.add_argument("--tree", type=Path, help="the kernel tree source paths are relative to (for SARIF)")
    add_output_options(parser)


def merge_command(args: argparse.Namespace) -> int:
    docs = [read_json(path) for path in args.shards]
    for path, doc in zip(args.shards, docs, strict=True):
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            raise UserError(f"not a shard document of `series --shard` (want format {FORMAT})", str(path))
    try:
        series = finish(docs)
    except (KeyError, TypeError, ValueError) as err:
        raise UserError(f"malformed shard document ({err.__class__.__name__}: {err})", str(args.shards[0])) from None
    return emit(series, args, args.tree or Path(docs[0].get("repo", ".")))


SUBCOMMAND = ("prove every commit of a patch series (git range, mbox or patch dir); report what each changes",
              add_arguments, run_command)
MERGE = ("combine the outputs of `series --shard I/N` runs into one report", merge_arguments, merge_command)
