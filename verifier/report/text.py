"""Reports: objtool/sparse-style one-line diagnostics with the counterexample beneath, a verdict table
(obligation x vector slot), and the assumptions every verdict rests on."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from verifier.proof.run import Report
from verifier.spec.obligations import OBLIGATIONS
from verifier.spec.slots import ALL_SLOTS
from verifier.spec.verdicts import Result, ec_label

SHORT = {"PROVED": "ok", "VIOLATED": "VIOL", "WAIVED": "waiv", "UNKNOWN": "unkn"}


def _ecs(result: Result) -> str:
    if not result.ec:
        return ""
    if len(result.ec) == 1:
        return " EC " + ec_label(result.ec[0])
    return f" ({len(result.ec)} exception classes)"


def source_steps(trace: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """A path one source line run at a time: consecutive steps on one line of one function, with the same
    DAIF and MDSCR_EL1, are one."""
    last: tuple | None = None
    for step in trace:
        key = (step["file"], step["line"], step["function"], step["daif"], step["mdscr"])
        if key != last:
            yield step
        last = key


def compress_trace(trace: list[dict[str, Any]], limit: int = 60) -> list[str]:
    """One line per source line run (not per instruction), DAIF/MDSCR_EL1 shown where they change."""
    lines: list[str] = []
    last_state: tuple | None = None
    for step in source_steps(trace):
        state = (step["daif"], step["mdscr"])
        marker = "  " if state == last_state else "* "
        lines.append(f"    {marker}{step['file']}:{step['line']:<5} {step['function']:<36} "
                     f"DAIF={step['daif']} MDSCR_EL1={step['mdscr']}  {step['insn']}")
        last_state = state
    if len(lines) > limit:
        head, tail = lines[: limit // 3], lines[-(2 * limit) // 3 :]
        lines = head + [f"    ... {len(lines) - len(head) - len(tail)} more source lines ..."] + tail
    return lines


def diagnostic(result: Result) -> list[str]:
    cex = result.counterexample or {}
    failing = cex.get("failing", {})
    where = f"{failing.get('file', '?')}:{failing.get('line', '?')}"
    severity = "error" if result.verdict == "VIOLATED" else "note"
    head = f"{where}: {severity}: {result.property}: {result.vector}{_ecs(result)}: {result.reason}"
    if result.verdict == "WAIVED":
        head = f"{where}: note: {result.property}: {result.vector}{_ecs(result)}: WAIVED: {result.reason}"
    lines = [head]
    if cex:
        init = cex.get("initial", {})
        caps = ", ".join(f"{k}={'on' if v else 'off'}" for k, v in init.get("capabilities", {}).items()) or "none"
        lines.append(f"  counterexample: SPSR_EL1={init.get('SPSR_EL1')} MDSCR_EL1={init.get('MDSCR_EL1')} "
                     f"ESR_EL1={init.get('ESR_EL1')} (EC {init.get('EC')}) thread_flags={init.get('thread_flags')}")
        lines.append(f"  capabilities: {caps}")
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
        lines.extend(compress_trace(cex.get("trace", [])))
    return lines


def _column(prop: str) -> tuple[int, str]:

    return (OBLIGATIONS.index(prop), "") if prop in OBLIGATIONS else (len(OBLIGATIONS), prop)


def table(results: list[Result]) -> list[str]:
    """Vector slots down, obligations across; `ok` = PROVED for every exception class, otherwise the
    counts of classes per verdict (VIOL, waiv, unkn)."""
    props = sorted({r.property for r in results}, key=_column)
    vectors = [s.name for s in ALL_SLOTS if any(r.vector == s.name for r in results)]
    width = max([len(p) for p in props] + [14])
    lines = ["verdicts (ok = PROVED for all; otherwise exception classes per verdict):",
             f"{'vector':<14} " + " ".join(f"{p:>{width}}" for p in props)]
    for vector in vectors:
        cells = []
        for prop in props:
            counts: dict[str, int] = {}
            for r in results:
                if r.property == prop and r.vector == vector:
                    counts[r.verdict] = counts.get(r.verdict, 0) + max(len(r.ec), 1)
            if not counts:
                cell = "-"  # the rule does not apply to this slot
            elif set(counts) == {"PROVED"}:
                cell = "ok"
            else:
                cell = " ".join(f"{SHORT[v]}:{n}" for v, n in sorted(counts.items()) if v != "PROVED")
            cells.append(f"{cell:>{width}}")
        lines.append(f"{vector:<14} " + " ".join(cells))
    return lines


def render_text(report: Report) -> str:
    lines: list[str] = []
    for result in report.results:
        if result.verdict in ("VIOLATED", "WAIVED"):
            lines.extend(diagnostic(result))
    for result in report.results:
        if result.verdict == "UNKNOWN":
            lines.append(f"unknown: {result.property}: {result.vector}{_ecs(result)}: {result.reason}")
    lines.append("")
    lines.extend(table(report.results))
    lines.append("")
    lines.append("assumptions:")
    lines.extend(f"  - {a}" for a in report.assumptions)
    contracts = sorted({c for r in report.results for c in r.contracts})
    if contracts:
        lines.append("contracts used on the paths:")
        lines.extend(f"  - {c}" for c in contracts)
    totals: dict[str, int] = {}
    for r in report.results:
        totals[r.verdict] = totals.get(r.verdict, 0) + 1
    lines.append("summary: " + ", ".join(f"{n} {v}" for v, n in sorted(totals.items())) +
                 f" in {report.stats.get('seconds', 0)}s")
    return "\n".join(lines) + "\n"
