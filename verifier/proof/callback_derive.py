"""What an `alternative_cb` callback writes at its site, read from the callback's code.

At boot the kernel calls `cb(alt, origptr, updptr, nr_inst)` for each site of an `alternative_cb`; what the
callback stores through `updptr` replaces the site's instructions. Here the callback is explored from its
entry, with its code and the code of the functions it calls (as far as the lifted files go), for each site
length the lifted entry code has: `nr_inst` is that length, the three pointers are unknown, and each
instruction of the site starts as a marker of "not written". At every return the words of the site are
read back (paths are not merged, so each path's words are its own): each the marker, or a word the
callback wrote, whose values are enumerated (what it read, a conduit or a capability, chooses among a few;
a value that depends on run time has too many). The site is kernel text: a call the callback summarises by
its contract does not write it unless it is passed a pointer to it (then the callback is not derived).
Every combination the paths allow is one variant of the site; the engine runs each.

A callback is not derived (its written contract stands, a pending hypothesis of the results that pass
through it) when a path does not return, when it writes a word that is not a constant or not an
instruction the prover can run in place (a PC-relative one), when it writes outside its site, or writes
part of it only. What a derivation rests on: the contracts of the calls it summarised (checked in turn).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, cast

import z3

from verifier.engine.explore import CALLBACK, Entry, Explorer, Options
from verifier.engine.image import Image
from verifier.engine.observer import Findings, Observer
from verifier.engine.observer import Path as ObservedPath
from verifier.engine.paths import Path as ExecPath
from verifier.frontend.decode import decode_word
from verifier.ir.program import Addr, Reloc, SymRef
from verifier.proof.contract_run import CodeIndex, ContractCheck, bounded, source_of, why_underived
from verifier.proof.lift_cache import lifted
from verifier.semantics.state import BV, Region, bv, split_address
from verifier.spec.contract_calls import ContractCalls
from verifier.spec.contract_check import AtCalls, function_start
from verifier.spec.contracts import Contracts, describe_variants
from verifier.util.errors import UserError

LINKED_FILES = 32  # the callback's file and the files of the functions it calls, transitively, up to this many
VARIANTS = 16  # variants of one site: more means the callback is not derived
HELPER_SIZE = 64  # instructions: a function the callback calls this big or smaller runs as code

Words = tuple[int | None, ...]


class NotDerived(Exception):
    """Why a callback's effect cannot be read from its code."""


@dataclass
class PatchDerivation:
    """One callback: the variants per site length, or why it was not derived."""

    callback: str
    variants: dict[int, tuple[Words, ...]] | None
    text: str  # the variants in words, or the reason they were not derived
    source: str = ""
    rests_on: list[str] = field(default_factory=list)  # the contracts of the calls it summarised

    def build_json(self) -> dict[str, Any]:
        """As BuildFacts.derived_patches holds it."""
        assert self.variants is not None
        return {"variants": [[length, [list(words) for words in known]] for length, known in
                             sorted(self.variants.items())], "source": self.source}

    def check(self) -> ContractCheck:
        """The derivation as a check the consolidation looks up (named as a path's `rests_on` names it)."""
        verdict = "PROVED" if self.variants is not None else "UNKNOWN"
        return ContractCheck(CALLBACK + self.callback, verdict, self.text, self.source, 1, list(self.rests_on))

    def line(self) -> str:
        if self.variants is not None:
            return f"derived: callback {self.callback} ({self.source}): {self.text}"
        return f"derived: callback {self.callback}: not derived ({self.text}); its written contract is trusted"


class _SiteWords(Observer):
    """At each return: the site's words (through `updptr`), and whether anything else of it was written."""

    def __init__(self, site: tuple[Region, int], origin: Region | None, length: int) -> None:
        self.site, self.origin, self.length = site, origin, length
        self.escaped: list[str] = []  # summarised calls that were passed a pointer to the site

    def on_summary(self, path: ObservedPath, name: str, summary: object) -> None:
        del summary
        bases = {str(base) for region in (self.site[0], self.origin) if region is not None for base in region.bases}
        arguments = {str(t) for i in range(8) for t in _subterms(path.state.read_reg(f"x{i}"))}
        if bases & arguments:
            self.escaped.append(name)

    def copy(self) -> _SiteWords:
        return self

    def merge(self, guard: z3.BoolRef, state: object, other: _SiteWords, other_guard: z3.BoolRef,
              other_state: object) -> _SiteWords:
        del guard, state, other, other_guard, other_state
        return self

    def at_return(self, path: ObservedPath) -> Findings:
        region, start = self.site
        memory = path.state.memory
        stray = [offset for (written, offset) in memory.written()
                 if (written == region and not start <= offset < start + 4 * self.length) or written == self.origin]
        values: dict[str, z3.ExprRef] = {f"word{i}": memory.load(region, start + 4 * i, 4)
                                         for i in range(self.length)}
        conditions = {"stray": z3.BoolVal(bool(stray))}
        return Findings(values=values, conditions=conditions)


def derive_callbacks(index: CodeIndex, contracts: Contracts, options: Options, sites: dict[str, set[int]]
                     ) -> list[PatchDerivation]:
    """Each callback of `sites` (callback -> the lengths of its sites, in instructions), read from its code."""
    out = []
    for name in sorted(sites):
        located = index.image_of(name)
        if not isinstance(located, tuple):
            out.append(PatchDerivation(name, None, located or "its code is not in the lifted files or the callee "
                                                               "ring"))
            continue
        _, _, path = located
        source = source_of(path, index.root)
        try:
            image = _linked(index, path)
            address = image.globals.get(name, image.locals[0].get(name))
            assert address is not None
            # the callback's helpers run as code (an instruction encoder is a few instructions); a big callee
            # (printk and its formatting) is summarised by its contract instead, as the budget would end in it
            big = frozenset(other for other in image.globals if other != name and _size(image, other) > HELPER_SIZE)
            helpers_only = replace(contracts, summarised=contracts.summarised | big)
            variants: dict[int, tuple[Words, ...]] = {}
            rests: set[str] = set()
            for length in sorted(sites[name]):
                variants[length], used = _derive(image, address, length, helpers_only, options)
                rests |= used
        except NotDerived as why:
            out.append(PatchDerivation(name, None, str(why), source))
            continue
        out.append(PatchDerivation(name, variants, describe_variants(variants), source, sorted(rests)))
    return out


def _linked(index: CodeIndex, path: Path) -> Image:
    """The callback's file linked with the files that define what it calls (so a helper such as
    aarch64_insn_gen_nop() runs as code, not as an unknown value)."""
    try:
        lifted(path, index.root)
    except UserError as err:
        raise NotDerived(f"its file does not lift: {err}") from None
    files = [path]
    done = 0
    while done < len(files) and len(files) < LINKED_FILES:
        try:
            program = lifted(files[done], index.root)
        except UserError:  # a callee's file the front end cannot lift: its functions stay summarised
            files.pop(done)
            continue
        done += 1
        defined = {s.name for s in program.symbols.values() if s.loc is not None}
        for section in program.sections.values():
            for item in section.items:
                insn = item.insn
                if insn is None or insn.mnemonic not in ("bl", "b"):
                    continue
                for operand in insn.operands:
                    if isinstance(operand, Addr) and isinstance(operand.target, SymRef):
                        other = index.where.get(operand.target.symbol)
                        if operand.target.symbol not in defined and other is not None and other not in files:
                            files.append(other)
    try:
        return Image.link([lifted(file, index.root) for file in files[:LINKED_FILES]])
    except UserError as err:
        raise NotDerived(f"its files do not lift: {err}") from None


def _derive(image: Image, address: int, length: int, contracts: Contracts, options: Options
            ) -> tuple[tuple[Words, ...], set[str]]:
    start = function_start(image, address, AtCalls(None, ()), contracts.build.priority, contracts.layout)
    state = start.state
    state.x[3] = bv(length)  # nr_inst
    site = split_address(state.x[2])  # updptr
    origin = split_address(state.x[1])  # origptr: the same instructions, through another mapping
    assert site is not None
    # the site is kernel text: a summarised call does not write it (no contract's `writes` covers it), unless
    # it is given a pointer to it, which makes the callback underived (below)
    classify = state.memory.classify
    sites = {site[0], origin[0] if origin else site[0]}
    state.memory.classify = lambda region: "site" if region in sites else classify(region)
    markers = [z3.BitVec(f"site.word{i}", 32) for i in range(length)]
    for i, marker in enumerate(markers):
        state.memory.store(site[0], site[1] + 4 * i, marker, 4)
    site_words = _SiteWords(site, origin[0] if origin else None, length)
    watching: list[Observer] = [site_words]
    first = ExecPath(state, z3.BoolVal(True), (), start.pc, watching)
    calls = ContractCalls(contracts, start.priority, regs_frame=False)
    limits = replace(bounded(options), merge=False)  # each path's words alone: the original, or what it wrote
    run = Explorer(image, calls, Entry(first, list(start.facts), start.caps, start.return_address), limits).explore()
    why = why_underived(run)
    if why is not None:
        raise NotDerived(why)
    if site_words.escaped:
        raise NotDerived(f"it passes a pointer to its site to {site_words.escaped[0]}, whose code is not read "
                         "here (or leaves one in an argument register when it calls it)")
    found: set[Words] = set()
    for ret in run.returns:
        if not z3.is_false(z3.simplify(ret.conditions["stray"])):
            raise NotDerived("it writes outside its site (or through origptr)")
        terms = [_leaf_index(cast_bv(ret.values[f"word{i}"]), markers[i]) for i in range(length)]
        found |= _combinations(terms, z3.And(ret.guard, *start.facts), limits)
    for words in found:
        if any(w is None for w in words) and not all(w is None for w in words):
            raise NotDerived("it writes part of its site only")
        for word in words:
            if word is not None:
                _check_word(word)
    return tuple(sorted(found, key=lambda w: [-1 if x is None else x for x in w])), set(run.applied_at)


def _size(image: Image, name: str) -> int:
    span = image.function_span(name)
    return (span[1] - span[0]) // 4 if span is not None else 0


def cast_bv(term: z3.ExprRef) -> BV:
    assert isinstance(term, z3.BitVecRef)
    return term


NOT_WRITTEN = -1


def _leaf_index(term: BV, marker: BV) -> z3.ArithRef:
    """The word of one (unmerged) path as an integer term: NOT_WRITTEN for the marker; else the value it
    wrote, which must not depend on the instruction it replaces."""
    term = z3.simplify(term)
    if term.eq(marker):
        return z3.IntVal(NOT_WRITTEN)
    if isinstance(term, z3.BitVecNumRef):
        return z3.IntVal(term.as_long())
    if marker.get_id() in {t.get_id() for t in _subterms(term)}:
        raise NotDerived(f"it writes a value computed from the instruction it replaces ({str(term)[:80]})")
    # computed from what it read (a conduit, a capability): the values it can take are enumerated below,
    # and a value that depends on run time has too many of them
    return z3.BV2Int(term)


def _subterms(term: z3.ExprRef) -> list[z3.ExprRef]:
    out, todo, seen = [], [term], set()
    while todo:
        current = todo.pop()
        if current.get_id() in seen:
            continue
        seen.add(current.get_id())
        out.append(current)
        todo.extend(current.children())
    return out


def _combinations(terms: list[z3.ArithRef], guard: z3.BoolRef, options: Options) -> set[Words]:
    solver = z3.Solver()
    solver.set("timeout", options.solver_timeout_ms)
    solver.set("rlimit", options.solver_rlimit)
    solver.add(guard)
    out: set[Words] = set()
    while True:
        status = solver.check()
        if status == z3.unknown:
            raise NotDerived("solver limit reached reading the site's words")
        if status == z3.unsat:
            return out
        model = solver.model()
        values = [cast(z3.IntNumRef, model.eval(t, model_completion=True)).as_long() for t in terms]
        out.add(tuple(None if v == NOT_WRITTEN else v for v in values))
        if len(out) > VARIANTS:
            raise NotDerived(f"more than {VARIANTS} variants of one site: what it writes is not a constant")
        solver.add(z3.Or([t != v for t, v in zip(terms, values, strict=True)]) if terms else z3.BoolVal(False))


def _check_word(word: int) -> None:
    insn = decode_word(word, ".text", 0)
    if insn is None:
        raise NotDerived(f"it writes {word:#010x}, which the prover does not decode")
    if any(isinstance(op, Addr | Reloc) for op in insn.operands):
        raise NotDerived(f"it writes `{insn}`, a PC-relative instruction, whose target depends on the site")
