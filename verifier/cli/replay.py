"""`entry-verify replay CEX.json`: re-execute counterexamples concretely and show the same failure."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from verifier.cli.inputs import report_errors
from verifier.proof.run import replay_counterexample
from verifier.report.text import compress_trace
from verifier.util.errors import UserError
from verifier.util.files import read_json


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", type=Path, metavar="CEX.json",
                        help="a report from `prove --format json`, one result, or one counterexample")
    parser.add_argument("--trace", action="store_true", help="print each replayed path")


def counterexamples(data: Any) -> list[dict[str, Any]]:
    if isinstance(data, dict) and "results" in data:
        return [r["counterexample"] for r in data["results"] if r.get("counterexample")]
    if isinstance(data, dict) and "counterexample" in data:
        return [data["counterexample"]]
    if isinstance(data, dict) and "replay" in data:
        return [data]
    raise UserError("no counterexample in this file (expected a prove --format json report)")


def _run(args: argparse.Namespace) -> int:
    data = read_json(args.file)
    cexes = counterexamples(data)
    failed = 0
    for cex in cexes:
        for key in ("replay", "model", "vector", "property", "failing"):
            if key not in cex:
                raise UserError(f"counterexample without '{key}'", str(args.file))
        replayed = replay_counterexample(cex)
        recorded = cex["failing"]
        label = f"{cex['property']} on {cex['vector']} (EC {cex['initial'].get('EC')})"
        if replayed is None:
            failed += 1
            print(f"{args.file}: error: {label}: the replay does not reproduce the violation")
            continue
        got = replayed["failing"]
        same = (got.get("file"), got.get("line"), got.get("what")) == (
            recorded.get("file"), recorded.get("line"), recorded.get("what"))
        status = "reproduced" if same else "reproduced at another place"
        if not same:
            failed += 1
        print(f"{got.get('file')}:{got.get('line')}: {label}: {status}: {got.get('what')} "
              f"({len(replayed['trace'])} instructions)")
        if args.trace:
            print("\n".join(compress_trace(replayed["trace"], limit=10_000)))
    print(f"replayed {len(cexes)} counterexample(s), {len(cexes) - failed} reproduced")
    return 1 if failed else 0


run = report_errors(_run, "file")  # a report edited by hand: a usage error

SUBCOMMAND = ("replay counterexamples concretely (no solver) and show the same failure", add_arguments, run)
