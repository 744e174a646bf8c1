"""Which exceptions the current state lets the CPU take: PSTATE.DAIF and MDSCR_EL1.KDE (Arm ARM D1.3)."""

from __future__ import annotations

import z3

from verifier.semantics.state import MDSCR, State, bv

MDSCR_SS, MDSCR_KDE = 0, 13  # MDSCR_EL1.SS (software step), .KDE (debug exceptions at the current EL)


def daif_bit(state: State, flag: str) -> z3.BitVecRef:
    """One PSTATE mask bit (1: masked) as a 1-bit vector: "D", "A", "I" or "F"."""
    bit = "FIAD".index(flag)
    return z3.Extract(bit, bit, state.daif)


def can_take_exception(state: State) -> z3.BoolRef:
    """An exception that would overwrite ELR/SPSR could be taken: I, F or A unmasked, or D unmasked while
    MDSCR_EL1.KDE allows kernel debug exceptions."""
    kde = z3.Extract(MDSCR_KDE, MDSCR_KDE, state.read_sysreg(MDSCR))
    zero = bv(0, 1)
    return z3.simplify(z3.Or(daif_bit(state, "I") == zero, daif_bit(state, "F") == zero,
                             daif_bit(state, "A") == zero,
                             z3.And(daif_bit(state, "D") == zero, kde == bv(1, 1))))
