"""`entry-verify explain REPORT.json`: one result in full -- the rule or obligation, the assumptions it
rests on, and for a violation the whole path with source lines and DAIF/MDSCR_EL1 along it; with
`--contract NAME`, one contract's check the same way: the callee, its precondition, and for a violated
contract the failing return with DAIF and MDSCR_EL1 along the callee's path; with `--pending`, the pending
hypotheses ranked by how many results each would close."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from verifier.cli.inputs import report_errors
from verifier.report.text import pending_ranking, summary
from verifier.spec.obligations import OBLIGATION_TEXT
from verifier.spec.verdicts import Result
from verifier.util.errors import UserError
from verifier.util.files import read_json


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("report", type=Path, metavar="REPORT.json", help="from prove/kernel --format json")
    parser.add_argument("--property", help="obligation id or rule (R1..R5, or a rule id like R4-handler)")
    parser.add_argument("--vector", help="vector slot, e.g. el0_64_sync")
    parser.add_argument("--ec", type=lambda s: int(s, 0), help="exception class, e.g. 0x3c")
    parser.add_argument("--contract", metavar="NAME",
                        help="show the check of this callee's contract instead of a result (e.g. do_el0_svc)")
    parser.add_argument("--pending", action="store_true",
                        help="list the pending hypotheses (unchecked clauses and contracts the results under "
                        "hypotheses rest on), ranked by how many results checking each would close")


def _pick(results: list[dict[str, Any]], args: argparse.Namespace) -> dict[str, Any]:
    chosen = [r for r in results
              if (args.property is None or args.property in (r["property"], r.get("rule")))
              and (args.vector is None or r["vector"] == args.vector)
              and (args.ec is None or args.ec in r["ec"])]
    if not chosen:
        raise UserError("no result matches --property/--vector/--ec", str(args.report))
    chosen.sort(key=lambda r: ["VIOLATED", "UNKNOWN", "WAIVED", "PROVED"].index(r["verdict"]))
    return chosen[0]


def _run(args: argparse.Namespace) -> int:
    data = read_json(args.report)
    if args.contract is not None:
        return _contract(data, args)
    if args.pending:
        return _pending(data, args)
    result = _pick(data.get("results", []), args)
    prop = result.get("rule") or result["property"]
    typed = Result.from_json(result)
    print(f"{prop} on {result['vector']}: {typed.status}" + (" (closed)" if typed.closed else ""))
    if result.get("policy"):
        print(f"  policy: {result['policy']}")
    print(f"  means: {OBLIGATION_TEXT.get(result['property'], 'the policy rule ' + prop)}")
    if result["ec"]:
        print(f"  exception classes: {', '.join(f'{e:#04x}' for e in result['ec'])}")
    print(f"  reason: {result['reason']}")
    print("  assumptions:")
    for line in data.get("assumptions", []):
        print(f"    - {line}")
    for contract in result.get("contracts", []):
        print(f"    - {contract}")
    if typed.rests_on:
        print(f"  its paths used: {', '.join(typed.rests_on)}")
    if typed.pending:
        print("  pending hypotheses (unchecked; the verdict holds only if each does):")
        for hypothesis in typed.pending:
            print(f"    - {hypothesis.line()}")
    cex = result.get("counterexample")
    if cex:
        print("  initial values:")
        for key, value in cex["initial"].items():
            print(f"    {key} = {value}")
        failing = cex["failing"]
        print(f"  fails at {failing['file']}:{failing['line']} in {failing['function']}: `{failing['insn']}`: "
              f"{failing['what']}")
        for key, value in failing.get("values", {}).items():
            print(f"    {key} = {value}")
        _path(cex["trace"])
    return 0


def _pending(data: dict[str, Any], args: argparse.Namespace) -> int:
    try:
        results = [Result.from_json(r) for r in data.get("results", [])]
    except (KeyError, TypeError, ValueError) as err:
        raise UserError(f"not a prove/kernel report: a result lacks {err}", str(args.report)) from None
    ranked = pending_ranking(results)
    print(f"{summary(results)}")
    if not ranked:
        print("no pending hypotheses: every PROVED or WAIVED result is closed")
        return 0
    print(f"{len(ranked)} pending hypotheses, by the results checking each would close (alone; held open):")
    for rank, (hypothesis, alone, holding) in enumerate(ranked, 1):
        print(f"{rank:>4}. {hypothesis.line()}")
        print(f"        would close {alone} result(s); holds {holding} open")
    return 0


def _path(trace: list[dict[str, Any]]) -> None:
    print("  path:")
    for step in trace:
        inlined = f" [{step['source_function']}]" if step.get("source_function") else ""
        print(f"    {step['file']}:{step['line']:<5} {step['function']}{inlined:<20} DAIF={step['daif']} "
              f"MDSCR_EL1={step['mdscr']}  {step['insn']}")


def _contract(data: dict[str, Any], args: argparse.Namespace) -> int:
    checks = {check["function"]: check for check in data.get("contracts", [])}
    check = checks.get(args.contract)
    if check is None:
        known = ", ".join(sorted(checks)) or "none (a report from before contract checking)"
        raise UserError(f"no contract check for '{args.contract}' in this report (checked: {known})",
                        str(args.report))
    where = f" ({check['source']})" if check.get("source") else ""
    depth = f" at depth {check['depth']}" if check.get("depth") else ""
    print(f"contract {check['function']}{where}: {check['verdict']}{depth}")
    if check.get("contract"):
        print(f"  {check['contract']}")
    daif = check.get("daif_at_call")
    if check["verdict"] != "TRUSTED":
        called = "any DAIF" if daif is None else ", ".join(f"{value:#x}" for value in daif)
        print(f"  explored from its entry to every return, called with DAIF: {called}")
    print(f"  reason: {check['reason']}")
    if check.get("callees"):
        print(f"  its own callees, summarised by their contracts: {', '.join(check['callees'])}")
    slots = data.get("stats", {}).get("slots", {})
    resting = [slot for slot, stats in slots.items() if args.contract in stats.get("contracts", [])]
    if resting:
        print(f"  slots whose verdicts rest on it: {', '.join(resting)}")
    cex = check.get("counterexample")
    if cex:
        failing = cex.get("failing", {})
        if failing:
            print(f"  fails at {failing['file']}:{failing['line']} in {failing['function']}: `{failing['insn']}`: "
                  f"{failing['what']}")
        for key, value in cex.get("values", {}).items():
            print(f"    {key} = {value}")
        _path(cex["trace"])
    return 0


run = report_errors(_run, "report")  # a report edited by hand: a usage error

SUBCOMMAND = ("print one result in full: the rule, assumptions, path with source lines, DAIF/MDSCR_EL1",
              add_arguments, run)
