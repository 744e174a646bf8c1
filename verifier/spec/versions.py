"""Kernel versions and version ranges (">= 5.10", ">= 6.2, < 7.0"): which contracts file and which role
bindings of a policy apply to the kernel at hand."""

from __future__ import annotations

import re

RANGE_CLAUSE = re.compile(r"(>=|<=|==|>|<)\s*(\d+(?:\.\d+){0,2})")


def version_key(version: str) -> tuple[int, ...]:
    """"6.12.117" -> (6, 12, 117); "" -> () (no version: the bundled subjects)."""
    return tuple(int(n) for n in re.findall(r"\d+", version)[:3])


def version_in(version: str, spec: str) -> bool:
    """Whether VERSION is in a range such as ">= 5.10", ">= 6.2, < 7.0" or "== 6.1"."""
    have = version_key(version)
    for clause in filter(None, (c.strip() for c in spec.split(","))):
        m = RANGE_CLAUSE.fullmatch(clause)
        if not m:
            raise ValueError(f"bad version range clause {clause!r} (want e.g. '>= 5.10')")
        want = version_key(m.group(2))
        here = have[:len(want)]
        ok = {">=": here >= want, "<=": here <= want, "==": here == want, ">": here > want, "<": here < want}
        if not ok[m.group(1)]:
            return False
    return True
