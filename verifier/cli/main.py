"""Command line: `entry-verify SUBCOMMAND ...`. Each subcommand lives in its own module."""

from __future__ import annotations

import argparse
import atexit
import contextlib
import gc
import os
import sys
import traceback
from collections.abc import Callable
from pathlib import Path

from verifier import __version__
from verifier.cli import crosscheck, explain, kernel, kernel_asm, lift, prove, replay, series
from verifier.cli.inputs import preflight
from verifier.util.errors import UserError

EXIT_USAGE = 2
EXIT_INTERNAL = 70  # sysexits.h EX_SOFTWARE: a bug of the tool, never a verdict (1 VIOLATED, 3 UNKNOWN, 4 ...)
GC_THRESHOLDS = (50_000, 20, 100)  # allocations between young collections, and so on (Python's: 700, 10, 10)

# name -> (help, add_arguments, run); run returns the exit status
Subcommand = tuple[str, Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int]]


def _subcommands() -> dict[str, Subcommand]:
    return {
        "prove": prove.SUBCOMMAND,
        "explain": explain.SUBCOMMAND,
        "kernel": kernel.SUBCOMMAND,
        "replay": replay.SUBCOMMAND,
        "lift": lift.SUBCOMMAND,
        "crosscheck": crosscheck.SUBCOMMAND,
        "kernel-asm": kernel_asm.SUBCOMMAND,
        "series": series.SUBCOMMAND,
        "merge": series.MERGE,
    }


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="entry-verify",
        description=(
            "Lift arm64 kernel entry assembly (entry.S and the compiler's assembly of entry-common.c and "
            "debug-monitors.c) into one IR, and check it."
        ),
        epilog="Exit status: 0 success, 1 check failed (a violation, a crosscheck difference), 2 usage or input "
        "error, 3 (prove, kernel, series) some verdict UNKNOWN and none VIOLATED, 4 all PROVED or WAIVED but some "
        "under hypotheses, 70 an internal error (a bug of entry-verify: please report it).",
    )
    parser.add_argument("--version", action="version", version=f"entry-verify {__version__}")
    subs = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (help_text, add_arguments, run) in _subcommands().items():
        sub = subs.add_parser(name, help=help_text, description=help_text)
        add_arguments(sub)
        sub.set_defaults(run=run)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "run", None):
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        preflight(args)
        return args.run(args)
    except UserError as err:
        print(f"{err}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("entry-verify: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader went away (`| head`): not an error of ours
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as err:  # noqa: BLE001 - a bug of ours: one line, and a status no verdict uses
        where = traceback.extract_tb(err.__traceback__)[-1]
        print(f"entry-verify: internal error: {err.__class__.__name__}: {err} (at {Path(where.filename).name}:"
              f"{where.lineno}); this is a bug in entry-verify, not in your input or kernel: please report it "
              f"with the command line (ENTRY_VERIFY_TRACEBACK=1 shows the traceback)", file=sys.stderr)
        if os.environ.get("ENTRY_VERIFY_TRACEBACK"):
            traceback.print_exc()
        return EXIT_INTERNAL


def entry() -> None:
    """The `entry-verify` command: main(), then out without tearing the interpreter down object by object (a
    proof leaves hundreds of thousands of solver terms, each freed through Z3 one at a time: a tenth of a
    second after a short series run). The exit handlers still run: temporary directories are removed, and the
    outputs were written and closed by then.

    The cyclic collector runs less often: a proof makes millions of short-lived solver wrappers, which free
    themselves by reference count, and at the default threshold every 700 of them start a pass over the lifted
    programs that finds nothing (about 5% of a short series run)."""
    gc.set_threshold(*GC_THRESHOLDS)
    status = main()
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        # the reader went away, or the stream is closed: nothing left to say
        with contextlib.suppress(BrokenPipeError, ValueError):
            stream.flush()
    os._exit(status)


if __name__ == "__main__":
    entry()
