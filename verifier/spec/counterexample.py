"""A counterexample from a replayed path: where the property fails, with the slot's initial values.

The replay (engine/replay.py) ran the one path a model describes; here it is confirmed that the property
fails at the eret it ends in, the failing instruction is found from the property's events, and the
interrupted context is shown as the assumptions name it."""

from __future__ import annotations

from typing import Any

import z3

from verifier.engine.explore import ModelLike
from verifier.engine.replay import Replayed, model_number
from verifier.spec.slots import Initial


def counterexample(replayed: Replayed | None, model: ModelLike, prop: str, initial: Initial,
                   cap_names: dict[int, str]) -> dict[str, Any] | None:
    """The counterexample dict, or None when the replayed path does not end in an eret that violates `prop`
    (the explorer and the replay disagree: an engine limit)."""
    if replayed is None:
        return None
    eret, trace = replayed.eret, replayed.trace
    if not z3.is_true(model.eval(eret.violations[prop], model_completion=True)):
        return None
    failing_at = eret.address
    what = f"{prop} fails at eret"
    for event in eret.events.get(prop, []):
        if z3.is_true(model.eval(event.cond, model_completion=True)):
            failing_at, what = event.address, event.what
            break
    index = max((i for i, a in enumerate(replayed.addresses) if a == failing_at), default=len(trace) - 1)
    failing = dict(trace[index]) if trace else {}
    failing["what"] = what
    failing["address"] = failing_at
    failing["values"] = {name: f"{model_number(model, expr):#x}" for name, expr in eret.values.items()}
    failing["values"]["interrupted SPSR_EL1"] = f"{model_number(model, initial.spsr):#x}"
    caps = {cap_names.get(number, f"cap{number}"): z3.is_true(model.eval(var, model_completion=True))
            for number, var in sorted(initial.caps.items())}
    esr = model_number(model, initial.esr)
    return {
        "initial": {
            "SPSR_EL1": f"{model_number(model, initial.spsr):#x}",
            "MDSCR_EL1": f"{model_number(model, initial.mdscr):#x}",
            "ESR_EL1": f"{esr:#x}",
            "EC": f"{(esr >> 26) & 0x3F:#04x}",
            "thread_flags": f"{model_number(model, initial.flags):#x}",
            "capabilities": caps,
        },
        "trace": trace,
        "failing": failing,
        "rests_on": sorted(eret.rests_on),  # the summarised calls and callbacks this path used
        "functions": sorted({step["function"] for step in trace} |
                            {step["source_function"] for step in trace if "source_function" in step}),
    }
