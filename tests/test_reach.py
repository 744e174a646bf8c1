"""Which exception classes reach a function: read from the guards it was entered under (spec/reach.py)."""

from __future__ import annotations

import z3

from verifier.spec.reach import ALL, Reached, with_class

ESR = z3.BitVec("esr0", 64)
EC = z3.Extract(31, 26, ESR)


def reached(*guards: z3.BoolRef) -> Reached:
    log = Reached(lambda _address: None)
    for guard in guards:
        log.note("handler", guard)
    return log


def test_a_class_is_left_out_only_where_the_guard_rules_it_out() -> None:
    log = reached(z3.ULE(EC, 36))
    assert log.classes(ESR) == {"handler": list(range(37))}
    assert reached(z3.BoolVal(True)).classes(ESR) == {"handler": ALL}


def test_a_proof_of_some_classes_records_only_those() -> None:
    """Its paths are those classes' alone: a guard that no longer names the class (the register held it as a
    constant) does not make every class reach the function."""
    assert reached(z3.BoolVal(True)).classes(ESR, (0x24,)) == {"handler": [0x24]}
    assert reached(z3.ULE(EC, 36)).classes(ESR, (0x15, 0x24, 0x25)) == {"handler": [0x15, 0x24]}


def test_with_class_fixes_the_class_bits_only() -> None:
    fixed = with_class(ESR, 0x24)
    solver = z3.Solver()
    solver.add(z3.Extract(31, 26, fixed) != 0x24)
    assert solver.check() == z3.unsat
    solver = z3.Solver()
    solver.add(z3.Or(z3.Extract(63, 32, fixed) != z3.Extract(63, 32, ESR),
                     z3.Extract(25, 0, fixed) != z3.Extract(25, 0, ESR)))
    assert solver.check() == z3.unsat
