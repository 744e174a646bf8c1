"""JUnit XML for CI test-report views: a test suite per commit of the series (not the base), a test case per
property and vector slot; VIOLATED is a failure (message: the failing source line), UNKNOWN an error (could
not be checked), WAIVED a pass with the waiver in its output."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from verifier.series.diff import prop_of
from verifier.series.report import where
from verifier.series.run import CommitReport, SeriesResult
from verifier.spec.verdicts import ec_label


def _suite(entry: CommitReport, name: str) -> ET.Element:
    suite = ET.Element("testsuite", name=name)
    cases: dict[tuple[str, str], ET.Element] = {}
    failures = errors = 0
    for result in entry.report.results:
        key = (prop_of(result), result.vector)
        case = cases.get(key)
        if case is None:
            case = cases[key] = ET.SubElement(suite, "testcase", classname=result.vector, name=key[0])
        ecs = ", ".join(ec_label(e) for e in result.ec)
        detail = f"{result.verdict}{' EC ' + ecs if ecs else ''}: {result.reason}"
        if result.verdict == "VIOLATED":
            failures += 1
            ET.SubElement(case, "failure", message=where(result) or result.reason, type="VIOLATED").text = detail
        elif result.verdict == "UNKNOWN":
            errors += 1
            ET.SubElement(case, "error", message=result.reason, type="UNKNOWN").text = detail
        elif result.verdict == "WAIVED":
            ET.SubElement(case, "system-out").text = detail
    suite.set("tests", str(len(cases)))
    suite.set("failures", str(failures))
    suite.set("errors", str(errors))
    suite.set("time", str(round(sum(s.get("seconds", 0.0) for s in entry.report.stats.get("slots", {}).values()), 3)))
    return suite


def to_junit(series: SeriesResult) -> str:
    root = ET.Element("testsuites", name="entry-verify series")
    for n, entry in enumerate(series.commits, start=1):
        root.append(_suite(entry, f"{n} {entry.commit.short} {entry.commit.subject}"))
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
