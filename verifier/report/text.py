"""Reports: objtool/sparse-style one-line diagnostics with the counterexample beneath, a verdict table
(obligation x vector slot), and the assumptions every verdict rests on."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from verifier.proof.run import Report
from verifier.spec.hypotheses import Hypothesis
from verifier.spec.obligations import OBLIGATIONS
from verifier.spec.slots import ALL_SLOTS
from verifier.spec.verdicts import Result, ec_label

SHORT = {"PROVED": "ok", "VIOLATED": "VIOL", "WAIVED": "waiv", "UNKNOWN": "unkn"}


def classes_text(result: Result) -> str:
    if not result.ec:
        return ""
    if len(result.ec) == 1:
        return " EC " + ec_label(result.ec[0])
    return f" ({len(result.ec)} exception classes)"


def masks(step: dict[str, Any]) -> tuple[str, str, str | None]:
    """What a step's masking is: DAIF, MDSCR_EL1 and, where the path has touched it, the GIC's PMR."""
    return step["daif"], step["mdscr"], step.get("pmr")


def source_steps(trace: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """A path one source line run at a time: consecutive steps on one line of one function, with the same
    DAIF and MDSCR_EL1, are one."""
    last: tuple | None = None
    for step in trace:
        key = (step["file"], step["line"], step["function"], *masks(step))
        if key != last:
            yield step
        last = key


LEGEND = ("legend: DAIF letters upper case = masked, lower case = unmasked (DAIF: all four masked, daif: none); "
          "* = DAIF, MDSCR_EL1 or PMR changed there; `...` = steps that change none of them, call nothing and write no "
          "exception register (--verbose: every step)")
# instructions a reviewer of the entry code wants on the path whatever else they do: calls, the exception
# registers the eret reads, masking, the eret
_EVENTFUL = ("bl ", "blr ", "eret", "msr elr_el1", "msr spsr_el1", "msr daif", "msr mdscr_el1", "msr icc_pmr_el1")


def compress_steps(trace: list[dict[str, Any]], failing: dict[str, Any] | None = None
                   ) -> list[tuple[dict[str, Any], bool, int]]:
    """The path's eventful steps (one per source line run): where DAIF or MDSCR_EL1 change, calls, the
    writes of the exception registers and masking, the eret, the failing step, the last one; each with
    whether it is the failing step and how many source lines were left out before it."""
    out: list[tuple[dict[str, Any], bool, int]] = []
    last_state: tuple | None = None
    skipped = 0
    steps, fails = _line_runs(trace, failing)
    for index, step in enumerate(steps):
        state = masks(step)
        changed = state != last_state
        last_state = state
        is_failing = fails[index]
        if not (changed or is_failing or index == len(steps) - 1 or str(step["insn"]).startswith(_EVENTFUL)):
            skipped += 1
            continue
        out.append((step, is_failing, skipped))
        skipped = 0
    return out


def _line_runs(trace: list[dict[str, Any]], failing: dict[str, Any] | None
               ) -> tuple[list[dict[str, Any]], list[bool]]:
    """source_steps(), and for each whether the failing instruction is among the steps it stands for (the
    last such run: the failure is where the path ends)."""
    steps: list[dict[str, Any]] = []
    fails: list[bool] = []
    last: tuple | None = None
    want = (failing.get("file"), failing.get("line"), failing.get("insn")) if failing else None
    for step in trace:
        key = (step["file"], step["line"], step["function"], *masks(step))
        if key != last:
            steps.append(step)
            fails.append(False)
        last = key
        if want is not None and (step.get("file"), step.get("line"), step.get("insn")) == want:
            fails = [False] * len(fails)
            fails[-1] = True
    return steps, fails


def compress_trace(trace: list[dict[str, Any]], limit: int = 60, compact: bool = False,
                   failing: dict[str, Any] | None = None) -> list[str]:
    """One line per source line run (not per instruction), DAIF/MDSCR_EL1 shown where they change. `compact`:
    only the eventful steps (compress_steps), each uneventful stretch as one `...` line."""
    lines: list[str] = []
    last_state: tuple | None = None
    if compact:
        chosen = compress_steps(trace, failing)
    else:
        steps, fails = _line_runs(trace, failing)
        chosen = [(step, fail, 0) for step, fail in zip(steps, fails, strict=True)]
    for step, is_failing, skipped in chosen:
        if skipped:
            lines.append(f"      ... {skipped} source line(s)")
        state = masks(step)
        marker = "* " if state != last_state else "  "
        last_state = state
        mark = "   <- fails here" if is_failing else ""
        pmr = f" PMR={step['pmr']}" if "pmr" in step else ""
        lines.append(f"    {marker}{step['file']}:{step['line']:<5} {step['function']:<28} "
                     f"DAIF={step['daif']} MDSCR_EL1={step['mdscr']}{pmr}  {step['insn']}{mark}")
    if len(lines) > limit:
        head, tail = lines[: limit // 3], lines[-(2 * limit) // 3 :]
        lines = head + [f"    ... {len(lines) - len(head) - len(tail)} more source lines ..."] + tail
    return lines


def diagnostic(result: Result, verbose: bool = True) -> list[str]:
    cex = result.counterexample or {}
    failing = cex.get("failing", {})
    where = f"{failing.get('file', '?')}:{failing.get('line', '?')}"
    severity = "error" if result.verdict == "VIOLATED" else "note"
    head = f"{where}: {severity}: {result.property}: {result.vector}{classes_text(result)}: {result.reason}"
    if result.verdict == "WAIVED":
        head = f"{where}: note: {result.property}: {result.vector}{classes_text(result)}: WAIVED: {result.reason}"
    lines = [head]
    if cex:
        init = cex.get("initial", {})
        caps = ", ".join(f"{k}={'on' if v else 'off'}" for k, v in init.get("capabilities", {}).items()) or "none"
        lines.append(f"  counterexample: SPSR_EL1={init.get('SPSR_EL1')} MDSCR_EL1={init.get('MDSCR_EL1')} "
                     f"ESR_EL1={init.get('ESR_EL1')} (EC {init.get('EC')}) thread_flags={init.get('thread_flags')}; "
                     f"capabilities: {caps}")
        lines.append(f"  fails at {where} in {failing.get('function', '?')}: `{failing.get('insn', '')}`: "
                     f"{failing.get('what', '')}")
        values = failing.get("values", {})
        if values:
            lines.append("  values: " + ", ".join(f"{k}={v}" for k, v in values.items()))
        unicorn = cex.get("unicorn")
        if unicorn is not None:
            lines.append(f"  Unicorn: {'reproduced' if unicorn['reproduced'] else 'NOT reproduced'}: "
                         f"{unicorn['why']}")
        lines.append("  path (* = DAIF or MDSCR_EL1 changed):")
        lines.extend(compress_trace(cex.get("trace", []), compact=not verbose, failing=failing))
    return lines


def _column(prop: str) -> tuple[int, str]:

    return (OBLIGATIONS.index(prop), "") if prop in OBLIGATIONS else (len(OBLIGATIONS), prop)


def cell_text(results: list[Result]) -> str:
    """`ok` = PROVED and closed for every class; `ok*` = PROVED, some under hypotheses; otherwise the
    counts of classes per other verdict (VIOL, waiv, unkn), `*` where some PROVED class is under hypotheses."""
    counts: dict[str, int] = {}
    for r in results:
        counts[r.verdict] = counts.get(r.verdict, 0) + max(len(r.ec), 1)
    if not counts:
        return "-"  # the rule does not apply to this slot
    star = "*" if any(r.verdict == "PROVED" and not r.closed for r in results) else ""
    if set(counts) == {"PROVED"}:
        return "ok" + star
    return " ".join(f"{SHORT[v]}:{n}" for v, n in sorted(counts.items()) if v != "PROVED") + star


def table(results: list[Result]) -> list[str]:
    """Vector slots down, obligations across."""
    props = sorted({r.property for r in results}, key=_column)
    vectors = [s.name for s in ALL_SLOTS if any(r.vector == s.name for r in results)]
    width = max([len(p) for p in props] + [14])
    lines = ["verdicts (ok = PROVED and closed for all classes; * = some PROVED only under hypotheses; "
             "otherwise exception classes per verdict):",
             f"{'vector':<14} " + " ".join(f"{p:>{width}}" for p in props)]
    for vector in vectors:
        cells = [f"{cell_text([r for r in results if r.property == prop and r.vector == vector]):>{width}}"
                 for prop in props]
        lines.append(f"{vector:<14} " + " ".join(cells))
    return lines


def pending_ranking(results: list[Result]) -> list[tuple[Hypothesis, int, int]]:
    """Each pending hypothesis with the number of results it holds open and the number it alone holds open
    (checking it would close those), most first."""
    holding: dict[Hypothesis, int] = {}
    alone: dict[Hypothesis, int] = {}
    for result in results:
        for hypothesis in result.pending:
            holding[hypothesis] = holding.get(hypothesis, 0) + 1
        if len(result.pending) == 1:
            alone[result.pending[0]] = alone.get(result.pending[0], 0) + 1
    return sorted(((h, alone.get(h, 0), n) for h, n in holding.items()), key=lambda t: (-t[1], -t[2], t[0]))


def pending_lines(results: list[Result], most: int | None = None) -> list[str]:
    ranked = pending_ranking(results)
    shown = ranked if most is None else ranked[:most]
    lines = [f"  - {h.line()} (would close {alone}; holds {n} result(s) open)" for h, alone, n in shown]
    if len(shown) < len(ranked):
        lines.append(f"  ... {len(ranked) - len(shown)} more (`entry-verify explain REPORT.json --pending`)")
    return lines


def summary(results: list[Result]) -> str:
    """`40 PROVED (12 closed, 28 under hypotheses), 2 VIOLATED`: results per verdict, PROVED and WAIVED
    split by whether they are closed."""
    totals: dict[str, list[int]] = {}
    for r in results:
        counts = totals.setdefault(r.verdict, [0, 0])
        counts[0 if r.closed or r.verdict not in ("PROVED", "WAIVED") else 1] += 1
    parts = []
    for verdict, (closed, under) in sorted(totals.items()):
        split = f" ({closed} closed, {under} under hypotheses)" if verdict in ("PROVED", "WAIVED") else ""
        parts.append(f"{closed + under} {verdict}{split}")
    return ", ".join(parts)


# assumption lines every run has (the engine's, the instruction semantics'), and each contract check: listed
# with --verbose, counted otherwise
_STANDING = ("engine: ", "semantics: ", "contract check: ")


def render_text(report: Report, verbose: bool = True) -> str:
    """The report as text: the findings first (errors, then notes, then what is unknown, each with its
    file:line), the verdict table, what the verdicts rest on, a summary. Not `verbose`: paths compacted to
    their events, the standing assumptions and each contract check counted instead of listed."""
    lines: list[str] = []
    order = {"VIOLATED": 0, "WAIVED": 1}
    findings = sorted((r for r in report.results if r.verdict in order), key=lambda r: order[r.verdict])
    for result in findings:
        lines.extend(diagnostic(result, verbose))
    for result in report.results:
        if result.verdict == "UNKNOWN":
            lines.append(f"{_where_unknown(result)}: unknown: {result.property}: {result.vector}"
                         f"{classes_text(result)}: {result.reason}")
    if findings:
        lines.append(LEGEND)
    lines.append("")
    lines.extend(table(report.results))
    lines.append("")
    lines.append("assumptions:")
    standing = [a for a in report.assumptions if a.startswith(_STANDING)]
    lines.extend(f"  - {a}" for a in report.assumptions if verbose or a not in standing)
    if standing and not verbose:
        engine = sum(a.startswith(("engine: ", "semantics: ")) for a in standing)
        checks = len(standing) - engine
        lines.append(f"  - and {engine} standing assumptions of the engine and the instruction semantics"
                     + (f", and {checks} contract checks" if checks else "") + " (--verbose lists them)")
    contracts = sorted({c for r in report.results for c in r.contracts})
    if contracts:
        lines.append("contracts used on the paths:")
        lines.extend(f"  - {c}" for c in contracts)
    if any(r.pending for r in report.results):
        lines.append("pending hypotheses (what results under hypotheses rest on, unchecked):")
        lines.extend(pending_lines(report.results, most=None if verbose else 5))
    lines.append(f"summary: {summary(report.results)} in {report.stats.get('seconds', 0)}s")
    return "\n".join(lines) + "\n"


def _where_unknown(result: Result) -> str:
    """`file:line` of an UNKNOWN result: where its reason says the path stopped, else its vector slot."""
    found = re.search(r" at (\S+:\d+) ", result.reason + " ")
    return found.group(1) if found else result.vector
