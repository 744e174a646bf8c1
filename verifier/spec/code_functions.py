"""Which functions an instruction belongs to: the symbol whose code holds it and the C function its source
line is in (a header's inline functions included: `__exit_to_user_mode_prepare` is one). Compiled code
inlines functions (`cortex_a76_erratum_1463225_debug_handler` inside `el1_softstp`, `exit_to_user_mode`
inside every EL0 handler), so the symbol alone cannot say where an inlined body starts; the line
information can."""

from __future__ import annotations

from verifier.engine.image import CodeRef, Image
from verifier.frontend.srcfunc import function_at


class CodeFunctions:
    """Per address, the names of the functions its instruction is in (shared by every path of a slot)."""

    def __init__(self, image: Image) -> None:
        self.image = image
        self._names: dict[int, tuple[str, ...]] = {}

    def names(self, address: int, code: CodeRef) -> tuple[str, ...]:
        found = self._names.get(address)
        if found is None:
            names = [self.image.function_at(address)]
            src = code.item.src
            if src is not None:
                names.append(function_at(self.image.programs[code.program].source_root, src.file, src.line,
                                         headers=True))
            found = tuple(dict.fromkeys(name for name in names if name))
            self._names[address] = found
        return found


def source_functions(image: Image) -> set[str]:
    """Every C function the lifted instructions' source lines are in (inlined ones included)."""
    found: set[str] = set()
    for program in image.programs:
        lines = {(item.src.file, item.src.line) for section in program.sections.values() for item in section.items
                 if item.insn is not None and item.src is not None}
        found |= {function_at(program.source_root, file, line, headers=True) or "" for file, line in lines}
    return found - {""}
