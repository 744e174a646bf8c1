"""SARIF 2.1.0 for code-scanning UIs: one result per verdict that is not PROVED at the tip (and per
regression a later commit fixed), located at the counterexample's failing source line, with the
counterexample path as a code flow. WAIVED verdicts carry their waiver as a suppression; `baselineState` says
whether the base already had the same verdict and counterexample class."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from verifier import __version__
from verifier.report.text import source_steps
from verifier.series.diff import cells, cex_class, classes_of, prop_of
from verifier.series.report import breaks_and_fixes
from verifier.series.run import CommitReport, SeriesResult
from verifier.spec.obligations import OBLIGATION_TEXT
from verifier.spec.verdicts import Result, ec_label

SCHEMA = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
LEVEL = {"VIOLATED": "error", "UNKNOWN": "warning", "WAIVED": "note"}


def _physical(file: str, line: int) -> dict[str, Any]:
    return {"artifactLocation": {"uri": file, "uriBaseId": "SRCROOT"}, "region": {"startLine": max(line, 1)}}


def _thread_flow(trace: list[dict[str, Any]]) -> dict[str, Any]:
    """The counterexample's path, one location per source line run."""
    locations: list[dict[str, Any]] = []
    for step in source_steps(trace):
        text = f"{step['function']}: {step['insn']}  (DAIF={step['daif']} MDSCR_EL1={step['mdscr']})"
        locations.append({"location": {"physicalLocation": _physical(step["file"], step["line"]),
                                       "message": {"text": text}}})
    return {"locations": locations}


def _result(result: Result, entry: CommitReport, baseline: str, note: str = "") -> dict[str, Any]:
    ecs = ", ".join(ec_label(e) for e in result.ec[:8]) + (", ..." if len(result.ec) > 8 else "")
    text = f"{result.verdict} {prop_of(result)} on {result.vector}" + (f", EC {ecs}" if ecs else "")
    text += f": {result.reason}{note}"
    out: dict[str, Any] = {"ruleId": prop_of(result), "level": LEVEL[result.verdict], "message": {"text": text},
                           "baselineState": baseline,
                           "properties": {"vector": result.vector, "ec": result.ec, "verdict": result.verdict,
                                          "commit": entry.commit.sha}}
    cex = result.counterexample
    if cex and cex.get("failing"):
        failing = cex["failing"]
        out["locations"] = [{"physicalLocation": _physical(failing["file"], failing["line"]),
                             "logicalLocations": [{"name": failing["function"], "kind": "function"}]}]
        out["codeFlows"] = [{"message": {"text": failing.get("what", result.verdict)},
                             "threadFlows": [_thread_flow(cex["trace"])]}]
    if result.verdict == "WAIVED":
        out["suppressions"] = [{"kind": "external", "justification": result.reason}]
    return out


def to_sarif(series: SeriesResult, tree: Path) -> dict[str, Any]:
    tip = series.commits[-1]
    base_classes = {cell: cex_class(r) for cell, r in cells(series.base).items()}
    results: list[dict[str, Any]] = []
    rule_ids: dict[str, str] = {}
    for result in tip.report.results:
        if result.verdict == "PROVED":
            continue
        same = all(base_classes.get((prop_of(result), result.vector, ec)) == cex_class(result)
                   for ec in classes_of(result))
        results.append(_result(result, tip, "unchanged" if same else "new"))
        rule_ids[prop_of(result)] = result.property
    # Regressions the tip no longer has: bisection still hits them.
    by_sha = {c.commit.sha: c for c in series.commits}
    reported: set[int] = set()
    for item in breaks_and_fixes(series):
        entry = by_sha[item["broken_by"]]
        if not item["fixed_by"]:
            continue
        for result in entry.report.results:
            hit = item["ec"] in result.ec if item["ec"] is not None else not result.ec
            if hit and id(result) not in reported and (prop_of(result), result.vector) == (item["property"],
                                                                                           item["vector"]):
                reported.add(id(result))
                note = f" (at commit {entry.commit.short}, fixed by {item['fixed_by'][:12]})"
                results.append(_result(result, entry, "new", note))
                rule_ids[prop_of(result)] = result.property
    rules = [{"id": rule, "shortDescription": {"text": OBLIGATION_TEXT.get(rule, f"policy rule {rule}")},
              "properties": {"family": family}} for rule, family in sorted(rule_ids.items())]
    return {"$schema": SCHEMA, "version": "2.1.0",
            "runs": [{"tool": {"driver": {"name": "entry-verify", "version": __version__, "rules": rules}},
                      "originalUriBaseIds": {"SRCROOT": {"uri": tree.resolve().as_uri() + "/"}},
                      "results": results,
                      "properties": {"base": series.base.commit.sha, "tip": tip.commit.sha}}]}
