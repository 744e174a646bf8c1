"""System register names and their MRS/MSR encodings (op0:op1:CRn:CRm:op2 packed into 16 bits).

The table comes from capstone's own constants, so the assembler-side and the disassembler-side front
ends agree on names by construction; the generic `s3_0_c1_c0_0` form is parsed here too.
"""

from __future__ import annotations

import re
from functools import cache

import capstone.arm64_const as _cs

_GENERIC = re.compile(r"^s([0-3])_([0-7])_c([0-9]|1[0-5])_c([0-9]|1[0-5])_([0-7])$", re.IGNORECASE)


@cache
def _by_name() -> dict[str, int]:
    table = {}
    for const in dir(_cs):
        if const.startswith("ARM64_SYSREG_"):
            table[const[len("ARM64_SYSREG_") :].lower()] = getattr(_cs, const)
    return table


@cache
def _by_encoding() -> dict[int, str]:
    names: dict[int, str] = {}
    for name, enc in sorted(_by_name().items()):
        names.setdefault(enc, name)
    return names


def encode(name: str) -> int | None:
    """The encoding of a system register name (`mdscr_el1`, `S3_0_C1_C0_0`), or None if unknown."""
    lowered = name.lower()
    enc = _by_name().get(lowered)
    if enc is not None:
        return enc
    m = _GENERIC.match(lowered)
    if m:
        op0, op1, crn, crm, op2 = (int(g) for g in m.groups())
        return (op0 << 14) | (op1 << 11) | (crn << 7) | (crm << 3) | op2
    return None


def known(name: str) -> int:
    """The encoding of a system register this code names itself (a constant): KeyError if it is unknown."""
    enc = encode(name)
    if enc is None:
        raise KeyError(f"unknown system register '{name}'")
    return enc


def name_of(encoding: int) -> str:
    """The preferred name of an encoding, or the generic `s3_0_c1_c0_0` form."""
    name = _by_encoding().get(encoding)
    if name:
        return name
    e = encoding
    return f"s{(e >> 14) & 3}_{(e >> 11) & 7}_c{(e >> 7) & 15}_c{(e >> 3) & 15}_{e & 7}"
