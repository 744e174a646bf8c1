"""Concrete replay of a counterexample: the same IR interpreter, following the one path a model takes.

No solver runs here: every branch, alternative and indirect target is decided by evaluating it under the
model. The replay records the trace a counterexample prints (source lines, functions, DAIF, MDSCR_EL1)
and what the observers found at the eret it ends in; spec/counterexample.py confirms the failure there.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

import z3
from typing_extensions import override

from verifier.engine.explore import EretCheck, Explorer, ModelLike, Steering
from verifier.engine.image import CodeRef, Image
from verifier.engine.paths import Path
from verifier.frontend.srcfunc import function_at
from verifier.ir.program import Insn
from verifier.semantics.state import BV, ICC_PMR_EL1, MDSCR, Region


class DictModel(ModelLike):
    """A model given as name -> value (from a counterexample file): evaluates by substitution, unknown
    names are 0/false (model completion)."""

    def __init__(self, values: dict[str, int | bool]) -> None:
        self.values = values
        self._cache: dict[int, z3.ExprRef] = {}

    def _leaves(self, expr: z3.ExprRef) -> list[z3.ExprRef]:
        seen: set[int] = set()
        out: list[z3.ExprRef] = []
        stack = [expr]
        while stack:
            node = stack.pop()
            key = node.get_id()
            if key in seen:
                continue
            seen.add(key)
            if z3.is_const(node) and node.decl().kind() == z3.Z3_OP_UNINTERPRETED:
                out.append(node)
            else:
                stack.extend(node.children())
        return out

    @override
    def eval(self, expr: z3.ExprRef, model_completion: bool = True) -> z3.ExprRef:
        pairs = []
        for leaf in self._leaves(expr):
            value = self.values.get(str(leaf), 0)
            if z3.is_bool(leaf):
                pairs.append((leaf, z3.BoolVal(bool(value))))
            else:
                pairs.append((leaf, z3.BitVecVal(int(value), cast(z3.BitVecRef, leaf).size())))
        return z3.simplify(z3.substitute(expr, *pairs)) if pairs else z3.simplify(expr)


def model_values(model: z3.ModelRef) -> dict[str, int | bool]:
    """Every constant of a Z3 model, for the counterexample file."""
    out: dict[str, int | bool] = {}
    for decl in model.decls():
        value = model[decl]
        if z3.is_bv_value(value):
            out[decl.name()] = value.as_long()
        elif z3.is_true(value) or z3.is_false(value):
            out[decl.name()] = z3.is_true(value)
    return out


def model_number(model: ModelLike, expr: z3.ExprRef) -> int:
    value = model.eval(expr, model_completion=True)
    return cast(z3.BitVecNumRef, value).as_long() if z3.is_bv_value(value) else 0


def daif_text(value: int) -> str:
    return "".join(flag if value & bit else flag.lower() for flag, bit in (("D", 8), ("A", 4), ("I", 2), ("F", 1)))


@dataclass(frozen=True)
class Snapshot:
    """The registers of one replay step, before its instruction runs, as terms (evaluated only where an
    independent execution is compared with them), the memory epochs (how many contract calls so far forgot
    each class of memory) and the bytes written."""

    x: tuple[BV, ...]
    sp_el1: BV
    sp_el0: BV
    nzcv: BV
    daif: BV
    sysregs: dict[int, BV]
    epochs: dict[str, Any]
    cells: dict[tuple[Region, int], tuple[BV, int]]  # the bytes written so far: (value, which byte)
    depth: int  # the calls the path is inside (one more after a call the engine followed, not summarised)

    @staticmethod
    def of(path: Path) -> Snapshot:
        state = path.state
        return Snapshot(tuple(state.x), state.sp_el1, state.sp_el0, state.nzcv, state.daif, dict(state.sysregs),
                        dict(state.memory.epochs), state.memory.written(), len(path.ctx))


@dataclass
class Replayed:
    """The one path a model takes, run to its last eret: the trace a counterexample prints, and what the
    observers found at that eret; for a confirmation on another engine, each step's registers and the
    memory regions the path wrote, with the function that names their class."""

    trace: list[dict[str, Any]]
    addresses: list[int]  # the address of each trace step
    eret: EretCheck
    snapshots: list[Snapshot] = field(default_factory=list)
    written: set[Region] = field(default_factory=set)
    classify: Callable[[Region], str] | None = None
    # every initial memory word the path read: (region, word offset, epoch, its value as the memory model has it)
    initial_words: list[tuple[Region, int, int, z3.ExprRef]] = field(default_factory=list)


# Makes the explorer that replays, steered by the model and the replay's step listener, started where the proof
# started (with the proof's options).
MakeExplorer = Callable[[Steering], Explorer]


def replay(image: Image, make_explorer: MakeExplorer, model: ModelLike, to_return: bool = False) -> Replayed | None:
    """Re-execute the path `model` describes; None if it reaches no eret (with `to_return`: no return from
    the explored function to its caller)."""
    trace: list[dict[str, Any]] = []
    addresses: list[int] = []
    snapshots: list[Snapshot] = []
    written: set[Region] = set()
    classify: list[Callable[[Region], str]] = []
    initial_words: list[tuple[Region, int, int, z3.ExprRef]] = []

    def on_step(path: Path, code: CodeRef, insn: Insn) -> None:
        memory = path.state.memory
        if not classify:
            classify.append(memory.classify)
            initial = memory.initial
            assert initial is not None

            def recorded(region: Region, word: int, epoch: int) -> BV:
                value = initial(region, word, epoch)
                initial_words.append((region, word, epoch, value))
                return value

            memory.initial = recorded  # the path's copies of the memory share it from here
        snapshots.append(Snapshot.of(path))
        written.update(region for region, _ in memory.written())
        src = code.item.src
        step: dict[str, Any] = {
            "file": (src.file or src.asm_file) if src else "?",
            "line": (src.line or src.asm_line) if src else 0,
            "function": image.function_at(path.pc) or "?",
            "daif": daif_text(model_number(model, path.state.daif)),
            "mdscr": f"{model_number(model, path.state.read_sysreg(MDSCR)):#x}",
            "insn": str(insn),
        }
        if ICC_PMR_EL1 in path.state.sysregs:  # the path has read or written the GIC priority mask
            step["pmr"] = f"{model_number(model, path.state.sysregs[ICC_PMR_EL1]):#x}"
        if src is not None:
            step["asm"] = f"{src.asm_file}:{src.asm_line}"
            inlined = function_at(image.programs[code.program].source_root, src.file, src.line)
            if inlined and inlined != step["function"]:
                step["source_function"] = inlined  # an inlined C function
            if src.macros:
                step["macros"] = [name for name, _ in src.macros]
        trace.append(step)
        addresses.append(path.pc)

    run = make_explorer(Steering(model, on_step)).explore()
    ends = run.returns if to_return else run.erets
    if not ends:
        return None
    return Replayed(trace, addresses, ends[-1], snapshots, written, classify[0] if classify else None,
                    initial_words)
