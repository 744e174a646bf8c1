"""What a verdict rests on besides the code it explored: a hypothesis is one clause of one contract (or a
callback's patch, or a whole contract) that the paths reaching the verdict used and that nothing checked.

A verdict is *closed* when it rests on no pending hypothesis, and *under hypotheses* otherwise (Frama-C's
Valid against Valid_under_hyp): PROVED under hypotheses is a proof only if each listed hypothesis holds.
"""

from __future__ import annotations

from dataclasses import dataclass

# The clause a hypothesis names when a whole contract (every clause) was not checked.
WHOLE_CONTRACT = "contract"
# The clause of a boot-time callback: what it may write at its alternative's site.
PATCH = "patch"


@dataclass(frozen=True, order=True)
class Hypothesis:
    """One unchecked clause a verdict rests on: which function (or callback), which clause, and why it
    is pending (not checked, or checked without a PROVED)."""

    function: str
    clause: str
    why: str

    def json(self) -> dict[str, str]:
        return {"function": self.function, "clause": self.clause, "why": self.why}

    @classmethod
    def from_json(cls, data: dict[str, str]) -> Hypothesis:
        return cls(str(data["function"]), str(data["clause"]), str(data["why"]))

    def line(self) -> str:
        clause = "" if self.clause == WHOLE_CONTRACT else f" `{self.clause}`"
        return f"{self.function}{clause}: {self.why}"
