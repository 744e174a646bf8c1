"""The IR as JSON: what `entry-verify lift --json` prints."""

from __future__ import annotations

from typing import Any

from verifier.ir.program import DataValue, Item, Program, SrcLoc


def _src(src: SrcLoc | None) -> dict[str, Any] | None:
    if src is None:
        return None
    out: dict[str, Any] = {"asm_file": src.asm_file, "asm_line": src.asm_line}
    if src.file:
        out.update(file=src.file, line=src.line)
    if src.macros:
        out["macros"] = [{"macro": name, "called_at": where} for name, where in src.macros]
    return out


def _data(value: DataValue) -> dict[str, Any]:
    out: dict[str, Any] = {"size": value.size}
    if value.target is None:
        out["value"] = value.value
    else:
        out["target"] = str(value.target)
        out["pcrel"] = value.pcrel
    return out


def item_json(item: Item) -> dict[str, Any]:
    out: dict[str, Any] = {"offset": item.offset, "size": item.size, "kind": item.kind}
    if item.insn is not None:
        out["insn"] = str(item.insn)
        out["mnemonic"] = item.insn.mnemonic
        out["operands"] = [str(op) for op in item.insn.operands]
    if item.data:
        out["data"] = [_data(v) for v in item.data]
    elif item.raw is not None and item.kind != "insn":
        out["bytes"] = item.raw.hex()
    if item.reason:
        out["reason"] = item.reason
    src = _src(item.src)
    if src:
        out["src"] = src
    return out


def program_json(program: Program) -> dict[str, Any]:
    return {
        "path": program.path,
        "sections": [
            {"name": s.name, "flags": s.flags, "size": s.size, "items": [item_json(i) for i in s.items]}
            for s in program.sections.values()
        ],
        "symbols": [
            {"name": sym.name, "section": sym.loc.section if sym.loc else None,
             "offset": sym.loc.offset if sym.loc else None, "binding": sym.binding, "type": sym.kind}
            for sym in program.symbols.values()
        ],
        "alternatives": [
            {"orig": str(a.orig), "orig_len": a.orig_len, "repl": str(a.repl) if a.repl else None,
             "repl_len": a.repl_len, "cap": a.cap, "callback": a.callback, "src": _src(a.src)}
            for a in program.alternatives
        ],
    }
