"""The built-in obligations, one module each (see ../shared/docs/properties.md). Each module holds the
obligation's id, its text and the observer that checks it; this registry is the one place that lists them.

Adding an obligation: a module with an `OBLIGATION = Obligation(...)` and one line below."""

from __future__ import annotations

from verifier.spec.obligation import Obligation
from verifier.spec.obligations import d_restored, daif_order, eret_integrity, mdscr_sync, ss_restored

REGISTERED: tuple[Obligation, ...] = (
    eret_integrity.OBLIGATION,
    d_restored.OBLIGATION,
    ss_restored.OBLIGATION,
    daif_order.OBLIGATION,
    mdscr_sync.OBLIGATION,
)

OBLIGATIONS = tuple(obligation.id for obligation in REGISTERED)
OBLIGATION_TEXT = {obligation.id: obligation.text for obligation in REGISTERED}
