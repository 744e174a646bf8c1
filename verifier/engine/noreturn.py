"""Does a function never return? Read from the shape of its code, not its data.

panic() and its kin are `__noreturn`: the compiler emits no return for them, and every way out is a call
that does not return, a BUG() or a loop. Symbolic exploration often cannot follow such code to its end (a
load it cannot place, a loop bound), though whether it returns does not depend on any value. This walk
follows every instruction control can reach from the entry, whatever the data: both ways at each
conditional branch, on after each call (a called function comes back, if at all, to the instruction after
its call), both the original and the replacement of each alternative. The function does not return when no
reachable instruction is a return, an exception return or a branch to a computed address, and control never
runs off the code. What it rests on: the calls it did not go on after, because their contracts say they do
not return (checked in turn by the caller of this module).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from verifier.engine.calls import Variant
from verifier.engine.explore import CALLBACK
from verifier.engine.image import Image
from verifier.ir.canon import canonical
from verifier.ir.program import Addr, SymRef

# What an instruction does to control, by mnemonic (canonical forms)
LEAVES = frozenset({"ret", "retaa", "retab", "eret", "eretaa", "eretab", "br", "braa", "brab", "braaz", "brabz"})
CALLS = frozenset({"bl", "blr", "blraa", "blrab", "blraaz", "blrabz"})
CONDITIONAL = frozenset({"cbz", "cbnz", "tbz", "tbnz"})
TRAPS = frozenset({"brk", "udf", "hlt"})
WALK_LIMIT = 50_000  # instructions: a budget, then the answer is "not shown"


@dataclass
class NoReturn:
    """The walk's answer: whether no path returns, why not, and the calls it did not go on after."""

    proved: bool
    reason: str
    rests_on: set[str] = field(default_factory=set)


def never_returns(image: Image, entry: int, does_not_return: Callable[[str], bool],
                  patches: Callable[[str, int], tuple[Variant, ...] | None] = lambda _name, _length: None
                  ) -> NoReturn:
    """Whether the function at `entry` never returns to its caller, by its control flow alone.
    `does_not_return(name)`: the callee's contract says it does not return (the walk does not go on after
    a call to it, and the answer rests on that contract). `patches(callback, length)`: what an
    alternative_cb callback can leave at a site (None: not known, and the walk gives up there)."""
    rests: set[str] = set()
    seen: set[int] = set()
    exits: dict[int, int] = {}  # the end of an alternative's replacement -> where it goes on (after its site)
    todo = [entry]

    def fall(address: int) -> int:
        return exits.get(address + 4, address + 4)

    while todo:
        address = todo.pop()
        if address in seen:
            continue
        seen.add(address)
        if len(seen) > WALK_LIMIT:
            return NoReturn(False, f"more than {WALK_LIMIT} instructions reachable")
        sites = image.alternatives.get(image.unalias(address), [])
        for site, _program, repl in sites:
            orig_end = address + site.orig_len
            if site.callback:
                variants = patches(site.callback, site.orig_len // 4)
                if variants is None:
                    return NoReturn(False, f"{_where(image, address)}: an alternative its callback patches at boot")
                written = [w.insn for variant in variants for w in variant if w is not None]
                if any(canonical(insn).mnemonic in LEAVES | CALLS | TRAPS | CONDITIONAL
                       or canonical(insn).mnemonic.startswith("b") for insn in written):
                    return NoReturn(False, f"{_where(image, address)}: its callback can write a branch there")
                rests.add(CALLBACK + site.callback)
                todo.append(orig_end)  # what it writes runs on to the end of the site
                continue
            if repl is None or site.repl_len == 0:
                todo.append(orig_end)
            else:
                exits[repl + site.repl_len] = orig_end
                todo.append(repl)
        code = image.code(address)
        if code is None or code.item.insn is None:
            return NoReturn(False, f"control reaches {_where(image, address)}, which holds no instruction")
        insn = canonical(code.item.insn)
        mnemonic = insn.mnemonic
        target = _target(image, insn.operands, code.program)
        if mnemonic in LEAVES:
            return NoReturn(False, f"`{mnemonic}` at {_where(image, address)} is reachable")
        if mnemonic in TRAPS:
            if image.warns_at(address):
                todo.append(fall(address))
            continue
        if mnemonic in CALLS:
            name = _callee(image, insn.operands, code.program)
            if name is not None and does_not_return(name):
                rests.add(name)
            else:
                todo.append(fall(address))
            continue
        if mnemonic == "b" and target is not None:
            name = image.names.get(target[0]) if target[0] is not None else None
            if target[1] is not None and does_not_return(target[1]):
                rests.add(target[1])  # a tail call
            elif name is not None and name != image.function_at(address) and does_not_return(name):
                rests.add(name)
            elif target[0] is not None:
                todo.append(target[0])
            else:
                return NoReturn(False, f"a branch at {_where(image, address)} leaves the lifted code")
            continue
        if mnemonic.startswith("b.") or mnemonic in CONDITIONAL:
            if target is None or target[0] is None:
                return NoReturn(False, f"a branch at {_where(image, address)} leaves the lifted code")
            todo.extend((target[0], fall(address)))
            continue
        if mnemonic == "b":
            return NoReturn(False, f"a branch at {_where(image, address)} the walk cannot place")
        todo.append(fall(address))
    return NoReturn(True, "no return is reachable: every path ends in a call that does not return, a BUG() or a "
                          "loop (its code's control flow, whatever the data)", rests)


def _target(image: Image, operands: tuple[object, ...], program: int) -> tuple[int | None, str | None] | None:
    """A direct branch's target: its address (None outside the lifted code) and the symbol it names."""
    for operand in operands:
        if isinstance(operand, Addr):
            name = operand.target.symbol if isinstance(operand.target, SymRef) and not operand.target.addend \
                else None
            return image.address(operand.target, program), name
    return None


def _callee(image: Image, operands: tuple[object, ...], program: int) -> str | None:
    target = _target(image, operands, program)
    if target is None:
        return None  # blr: through a register
    address, name = target
    if name is not None:
        return name
    return image.names.get(address) if address is not None else None


def _where(image: Image, address: int) -> str:
    code = image.code(address)
    if code is not None and code.item.src is not None and code.item.src.file:
        return f"{code.item.src.file}:{code.item.src.line}"
    return f"{address:#x} ({image.function_at(address) or '?'})"
