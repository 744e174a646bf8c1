"""The assembler-side front end: statements to IR, the way gas lays them out.

One pass over the statements (with macro expansion and conditionals), like gas's read.c, builds
*fragments*: runs of fixed-size items that end in a variable part (an alignment). Label values
are fragment base + offset, so differences inside one fragment are constants at once, and everything else
(forward references, other subsections) is resolved after layout, like gas's fixups. Subsections are laid
out in order after the whole file is read, so `alternative_if` replacement code placed in `.subsection 1`
lands after the section's main code exactly as in the object file.
"""

from __future__ import annotations

import re
from collections.abc import Hashable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, cast

from lark import Token, Tree
from typing_extensions import override

from verifier.frontend import macros as mac
from verifier.frontend.alternatives import decode_alternatives
from verifier.frontend.decode import decode_word
from verifier.frontend.expr import MASK64, Lin, NotConstant, Scope, evaluate
from verifier.frontend.litpool import LiteralPools, PoolEntry, PoolOverflow, bignum, written_unsigned
from verifier.frontend.operands import (
    OperandError,
    OperandScope,
    Pending,
    Unsupported,
    lower_operands,
    resolve_pending,
)
from verifier.frontend.reader import PathNamer, Stmt, dwarf_file, read_statements, split_statements
from verifier.frontend.syntax import ParseError, parse_arguments, parse_expr, parse_operands
from verifier.ir.program import (
    DataValue,
    Imm,
    Insn,
    Item,
    Loc,
    Operand,
    Program,
    Reloc,
    Section,
    Shifted,
    SrcLoc,
    Symbol,
    SymRef,
    Target,
)
from verifier.util.errors import UserError

NOP = 0xD503201F
MAX_REPEAT = 100_000
MAX_SPACE = 1 << 24  # a guard against runaway input, far above what the kernel uses
_LABEL = re.compile(r"^\s*([A-Za-z_.$][A-Za-z0-9_.$]*|[0-9]+)\s*:(?!:)")
_HEAD = re.compile(r"^\s*([A-Za-z_.$][A-Za-z0-9_.$]*)")
_REQ = re.compile(r"^\s*([A-Za-z_.$][A-Za-z0-9_.$]*)\s+\.req\s+([A-Za-z_.$][A-Za-z0-9_.$]*)\s*$", re.IGNORECASE)
_ASSIGN = re.compile(r"^\s*([A-Za-z_.$][A-Za-z0-9_.$]*)\s*=(?!=)(.*)$", re.DOTALL)
_REGISTER = re.compile(r"^(?:[xw](?:30|[12][0-9]|[0-9])|sp|wsp|xzr|wzr)$", re.IGNORECASE)

CONDITIONALS = {
    ".if", ".ifeq", ".ifne", ".ifgt", ".ifge", ".iflt", ".ifle", ".ifc", ".ifnc", ".ifeqs", ".ifnes", ".ifb",
    ".ifnb", ".ifdef", ".ifndef", ".ifnotdef", ".else", ".elseif", ".endif",
}
DATA_SIZES = {
    ".byte": 1, ".hword": 2, ".short": 2, ".2byte": 2, ".half": 2, ".word": 4, ".long": 4, ".int": 4, ".4byte": 4,
    ".quad": 8, ".xword": 8, ".8byte": 8, ".dword": 8,
}
IGNORED = {
    ".arch", ".arch_extension", ".cpu", ".ident", ".file", ".hidden", ".protected", ".internal",
    ".symver", ".reloc", ".end", ".fpu", ".eabi_attribute", ".variant_pcs", ".cfi_startproc", ".cfi_endproc",
    ".addrsig", ".addrsig_sym", ".loc_mark_labels", ".uleb128", ".sleb128", ".nops", ".altmacro_off",
}
# Whose layout to follow where GNU as and LLVM's assembler differ (only a `.local` symbol's `.comm`, so far).
Dialect = Literal["gnu", "llvm"]
_LLVM_ONLY = re.compile(r"^[ \t]*\.addrsig\b", re.MULTILINE)  # clang writes it, GNU as rejects it
TEXT_LIKE = (".text", ".noinstr.text", ".entry.text", ".entry.tramp.text", ".init.text", ".exit.text")


@dataclass
class _Deferred:
    """A data expression evaluated after layout; `.` is where it was written."""

    tree: Tree | Token
    frag: Frag
    offset: int


def _named(term: Hashable) -> tuple[str, str]:
    """The key of a laid-out term (no frag left in it): ("sec", section) or ("sym", symbol)."""
    return cast(tuple[str, str], term)


class _LaidOut(Scope):
    """The scope of a deferred expression: labels at their final addresses (as section + offset)."""

    def __init__(self, asm: Assembler, deferred: _Deferred) -> None:
        self.asm = asm
        self.deferred = deferred

    @override
    def symbol(self, name: str) -> Lin:
        value = self.asm.symbol(name)
        return value.substitute(self.asm._term_value)

    @override
    def here(self) -> Lin:
        frag = self.deferred.frag
        return Lin(frag.address + self.deferred.offset, {("sec", frag.section.name): 1})

    @override
    def local_ref(self, text: str) -> Lin:
        raise NotConstant("numeric local label in a deferred expression")


class _AsGasSees(Scope):
    """An `=expr` as gas's add_to_lit_pool compares it: a symbol is itself (a label by its name, not its
    place), an equate already set to a constant is that constant, and each `.` is a new symbol."""

    def __init__(self, asm: Assembler) -> None:
        self.asm = asm

    @override
    def symbol(self, name: str) -> Lin:
        value = self.asm.equates.get(name)
        if value is not None and value.is_const():
            return value
        return Lin.term(("sym", name))

    @override
    def here(self) -> Lin:
        self.asm.dot_count += 1
        return Lin.term(("dot", self.asm.dot_count))

    @override
    def local_ref(self, text: str) -> Lin:
        return Lin.term(("sym", self.asm.local_name_of(text)))


@dataclass
class _Entry:
    """An item as emitted into a fragment, with what is left to do for it once the layout is known."""

    item: Item
    redecode: bool = False  # an `.inst` word: decoded again at its final offset, so a PC-relative target is right
    data_value: Lin | _Deferred | None = None  # a data field's value: made item.data after layout


@dataclass(frozen=True)
class Alignment:
    """The variable part that ends a fragment: padding up to a multiple of `nbytes`, sized after layout."""

    nbytes: int  # a power of two
    fill: int | None  # the fill byte as written; None: gas's default (NOPs in code, zeros elsewhere)
    max_skip: int | None  # no padding at all when more than this many bytes would be needed
    src: SrcLoc


class Frag:
    """A run of fixed-size items; `tail` is the variable part that ends it."""

    __slots__ = ("section", "subsection", "entries", "size", "tail", "address")

    def __init__(self, section: SectionState, subsection: int) -> None:
        self.section = section
        self.subsection = subsection
        self.entries: list[_Entry] = []
        self.size = 0
        self.tail: Alignment | None = None
        self.address = 0


@dataclass
class SectionState:
    name: str
    flags: str
    subsections: dict[int, list[Frag]] = field(default_factory=dict)
    # gas's mapping state ($x/$d): what the last emitted thing was; padding from .org and aligned fill
    # inherits it, so zero words in code become instructions (udf #0) as in the object.
    mapping: str | None = None

    def is_code(self) -> bool:
        return "x" in self.flags

    def frag(self, subsection: int) -> Frag:
        chain = self.subsections.setdefault(subsection, [])
        if not chain:
            chain.append(Frag(self, subsection))
        return chain[-1]


@dataclass
class _Frame:
    """One source of statements: the file, a macro expansion or a repeat block."""

    stmts: Iterator[Stmt]
    macro: str | None = None
    call: tuple[str, str] | None = None  # (macro name, call site) for the expansion stack
    stack: tuple[tuple[str, str], ...] = ()


@dataclass
class _Cond:
    parent_active: bool
    active: bool
    seen_true: bool
    in_else: bool = False


@dataclass
class _Collect:
    kind: str  # "macro" | "rept"
    start: Stmt
    depth: int = 1
    body: list[Stmt] = field(default_factory=list)
    macro: mac.Macro | None = None
    repeat: list[dict[str, str]] = field(default_factory=list)
    stack: tuple[tuple[str, str], ...] = ()


def default_flags(name: str) -> str:
    if name.startswith(TEXT_LIKE) or name.startswith(".text"):
        return "ax"
    if name.startswith((".data", ".bss")):
        return "aw"
    return "a"


def _decode_string(token: str) -> bytes:
    body = token[1:-1]
    out = bytearray()
    i = 0
    escapes = {"n": 10, "t": 9, "r": 13, "b": 8, "f": 12, "\\": 92, '"': 34, "'": 39}
    while i < len(body):
        ch = body[i]
        if ch == "\\" and i + 1 < len(body):
            nxt = body[i + 1]
            if nxt in escapes:
                out.append(escapes[nxt])
                i += 2
                continue
            if nxt in "01234567":
                m = re.match(r"[0-7]{1,3}", body[i + 1 :])
                assert m
                out.append(int(m.group(0), 8) & 0xFF)
                i += 1 + len(m.group(0))
                continue
            if nxt == "x":
                m = re.match(r"[0-9a-fA-F]+", body[i + 2 :])
                if m:
                    out.append(int(m.group(0), 16) & 0xFF)
                    i += 2 + len(m.group(0))
                    continue
            out.append(ord(nxt))
            i += 2
            continue
        out += ch.encode()
        i += 1
    return bytes(out)


class Assembler(OperandScope):
    def __init__(self, path: Path, root: str | None = None, dialect: Dialect | None = None) -> None:
        self.path = path
        self.root = root
        self.dialect = dialect  # None: decided from the file the first time it matters (_layout_dialect)
        self.namer = PathNamer(path, root)
        self.sections: dict[str, SectionState] = {}
        self.cur: tuple[SectionState, int] = (self._section(".text", None), 0)
        self.prev: tuple[SectionState, int] = self.cur
        self.section_stack: list[tuple[tuple[SectionState, int], tuple[SectionState, int]]] = []
        self.labels: dict[str, tuple[Frag, int]] = {}
        self.equates: dict[str, Lin] = {}
        self.globals: dict[str, str] = {}
        self.local_names: set[str] = set()  # `.local`: a `.comm` of one of these is allocated here, in .bss
        self.types: dict[str, str] = {}
        self.sizes: dict[str, Lin] = {}
        self.aliases: dict[str, str] = {}
        self.macros: dict[str, mac.Macro] = {}
        self.macro_counter = 0
        self.local_counts: dict[str, int] = {}
        self.conds: list[_Cond] = []
        self.collect: _Collect | None = None
        self.frames: list[_Frame] = []
        self.stmt: Stmt | None = None
        self.file_names: dict[int, str] = {}
        self.loc_override: tuple[str, int] | None = None
        self.warnings: list[str] = []
        self.pools = LiteralPools()
        self.dot_count = 0  # `.` in literals, each its own symbol

    # --------------------------------------------------------------------------------- scope for exprs

    @override
    def symbol(self, name: str) -> Lin:
        if name in self.equates:
            return self.equates[name]
        if name in self.labels:
            frag, offset = self.labels[name]
            return Lin.term(frag, offset)
        if name in self.sections:  # a section's name is a symbol for its start (tramp_alias uses it)
            section = self.sections[name]
            chain = section.subsections.get(0) or [section.frag(0)]
            return Lin.term(chain[0], 0)
        return Lin.term(("sym", name))

    @override
    def here(self) -> Lin:
        frag = self.frag
        return Lin.term(frag, frag.size)

    @override
    def local_ref(self, text: str) -> Lin:
        return self.symbol(self.local_name_of(text))

    def local_name_of(self, text: str) -> str:
        """The label a numeric local reference (`1b`, `2f`) means here."""
        number, direction = text[:-1], text[-1].lower()
        count = self.local_counts.get(number, 0)
        if direction == "b":
            if count == 0:
                raise NotConstant(f"no previous definition of local label {number}")
            return self._local_name(number, count)
        return self._local_name(number, count + 1)

    @override
    def register_alias(self, name: str) -> str | None:
        return self.aliases.get(name.lower())

    @override
    def literal(self, tree: Tree, size: int) -> Lin:
        """`ldr Xn, =expr`: expr goes into the current section's pool (gas's add_to_lit_pool)."""
        assert self.stmt is not None
        identity, value = self._literal_entry(tree, size)
        section, subsection = self.cur
        try:
            label, offset = self.pools.add(section.name, subsection, size,
                                           PoolEntry(identity, value, self._srcloc(self.stmt)))
        except PoolOverflow as err:
            raise OperandError(f"literal pool insertion failed ({err})") from None
        return Lin.term(("sym", label), offset)

    def _literal_entry(self, tree: Tree, size: int) -> tuple[Hashable | None, Lin]:
        """What gas compares to share an entry, and the entry's value (evaluated here, like a `.quad`)."""
        wide = bignum(tree)
        if wide is not None:
            return None, Lin(wide)  # gas never shares a bignum; it is truncated to the entry's size
        value = evaluate(tree, self)
        if value.is_const():
            unsigned = written_unsigned(tree)
            # a 16-byte entry is the 64-bit value zero- or sign-extended, by its signedness
            return ("const", value.const, unsigned), Lin(value.const & MASK64 if unsigned else value.const)
        if size == 16:
            raise OperandError("cannot do 16-byte relocation")
        seen = evaluate(tree, _AsGasSees(self))
        if len(seen.terms) != 1 or next(iter(seen.terms.values())) != 1:
            raise OperandError("constant expression expected")  # gas: only a constant or symbol + addend
        (key,) = seen.terms
        dot = isinstance(key, tuple) and key[0] == "dot"  # _AsGasSees makes ("sym", name) and ("dot", n) only
        return (None if dot else ("sym", key, seen.const)), value

    @staticmethod
    def _local_name(number: str, instance: int) -> str:
        return f".L{number}\x02{instance}"

    # -------------------------------------------------------------------------------------- sections

    def _section(self, name: str, flags: str | None) -> SectionState:
        state = self.sections.get(name)
        if state is None:
            state = self.sections[name] = SectionState(name, flags if flags is not None else default_flags(name))
        elif flags:
            state.flags = flags
        return state

    @property
    def frag(self) -> Frag:
        section, subsection = self.cur
        return section.frag(subsection)

    def _switch(self, section: SectionState, subsection: int) -> None:
        self.prev = self.cur
        self.cur = (section, subsection)

    def _new_frag(self) -> None:
        section, subsection = self.cur
        section.subsections[subsection].append(Frag(section, subsection))

    # ------------------------------------------------------------------------------------- emitting

    def _srcloc(self, stmt: Stmt) -> SrcLoc:
        frame_stack = self.frames[-1].stack if self.frames else ()
        file, line = stmt.file, stmt.line
        if self.loc_override:
            file, line = self.loc_override
        return SrcLoc(stmt.asm_file, stmt.asm_line, file, line, frame_stack)

    def _emit(self, item: Item, redecode: bool = False, data_value: Lin | _Deferred | None = None) -> None:
        frag = self.frag
        item.offset = frag.size
        frag.entries.append(_Entry(item, redecode, data_value))
        frag.size += item.size
        self.cur[0].mapping = "data" if item.kind == "data" else "code"

    # ------------------------------------------------------------------------------------ main loop

    def run(self) -> Program:
        self.frames.append(_Frame(read_statements(self.path, self.root, self.namer)))
        while self.frames:
            frame = self.frames[-1]
            stmt = next(frame.stmts, None)
            if stmt is None:
                self.frames.pop()
                continue
            self.stmt = stmt
            try:
                self._statement(stmt)
            except UserError:
                raise
            except ParseError as err:
                raise stmt.error(str(err), self._column_in_line(stmt, err)) from None
            except (mac.MacroError, NotConstant, OperandError) as err:
                raise stmt.error(str(err)) from None
        if self.collect:
            what = ".endm" if self.collect.kind == "macro" else ".endr"
            raise self.collect.start.error(f"missing {what} before end of file")
        if self.conds:
            raise UserError("missing .endif before end of file", str(self.path))
        self._dump_remaining_pools()
        return self.finish()

    def _column_in_line(self, stmt: Stmt, err: ParseError) -> int:
        offset = getattr(self, "_args_offset", 0)
        return stmt.col + offset + (err.column - 1 if err.column else 0)

    def _push_stmts(self, stmts: list[Stmt], macro: str | None, call: Stmt) -> None:
        parent = self.frames[-1].stack if self.frames else ()
        where = f"{call.file}:{call.line}" if call.file else f"{call.asm_file}:{call.asm_line}"
        stack = parent + ((macro, where),) if macro else parent
        if len(self.frames) > 200:
            raise call.error("macro expansion nested too deeply (recursion?)")
        self.frames.append(_Frame(iter(stmts), macro, None, stack))

    def _statement(self, stmt: Stmt) -> None:
        text = stmt.text
        if self.collect is not None:
            self._collecting(stmt)
            return
        active = not self.conds or self.conds[-1].active
        rest = text
        labels: list[str] = []
        while True:
            m = _LABEL.match(rest)
            if not m:
                break
            labels.append(m.group(1))
            rest = rest[m.end() :]
        m = _HEAD.match(rest)
        head = m.group(1).lower() if m else ""
        args = rest[m.end() :] if m else rest
        self._args_offset = len(text) - len(args) if m else 0
        if active:
            for label in labels:  # also before a conditional on its line: gas's uaccess macros write `1:.if ...`
                self._define_label(label, stmt)
        if head in CONDITIONALS:
            self._conditional(head, args.strip(), stmt)
            return
        if not active:
            return
        if not rest.strip():
            return
        req = _REQ.match(rest)
        if req:
            target = req.group(2).lower()
            target = self.aliases.get(target, target)
            if not _REGISTER.match(target):
                raise stmt.error(f"'{req.group(2)}' is not a register")
            self.aliases[req.group(1).lower()] = target
            return
        assign = _ASSIGN.match(rest)
        if assign and not head.startswith("."):
            self.equates[assign.group(1)] = evaluate(parse_expr(assign.group(2)), self)
            return
        if assign and head.startswith(".") and not args.lstrip().startswith(("=", " ")):
            pass
        if head.startswith("."):
            if head in self.macros:
                self._expand(self.macros[head], args, stmt)
                return
            self._directive(head, args, stmt)
            return
        if head in self.macros:
            self._expand(self.macros[head], args, stmt)
            return
        if not m:
            raise stmt.error("expected an instruction or directive")
        self._instruction(head, args, stmt)

    def _define_label(self, label: str, stmt: Stmt) -> None:
        if label.isdigit():
            count = self.local_counts.get(label, 0) + 1
            self.local_counts[label] = count
            label = self._local_name(label, count)
        elif label in self.labels or label in self.equates:
            raise stmt.error(f"symbol '{label}' is already defined")
        frag = self.frag
        self.labels[label] = (frag, frag.size)

    # ---------------------------------------------------------------------------------- conditionals

    def _eval_const(self, text: str) -> int:
        return evaluate(parse_expr(text), self).value()

    def _conditional(self, head: str, args: str, stmt: Stmt) -> None:
        active = not self.conds or self.conds[-1].active
        if head == ".endif":
            if not self.conds:
                raise stmt.error(".endif without .if")
            self.conds.pop()
            return
        if head in (".else", ".elseif"):
            if not self.conds or self.conds[-1].in_else:
                raise stmt.error(f"{head} without .if")
            cond = self.conds[-1]
            if head == ".else":
                cond.active = cond.parent_active and not cond.seen_true
                cond.in_else = True
            else:
                take = cond.parent_active and not cond.seen_true and self._eval_const(args) != 0
                cond.active = take
            cond.seen_true = cond.seen_true or cond.active
            return
        if not active:
            self.conds.append(_Cond(False, False, True))
            return
        take = self._condition_value(head, args, stmt)
        self.conds.append(_Cond(True, take, take))

    def _condition_value(self, head: str, args: str, stmt: Stmt) -> bool:
        if head in (".if", ".ifne"):
            return self._eval_const(args) != 0
        if head == ".ifeq":
            return self._eval_const(args) == 0
        if head in (".ifgt", ".ifge", ".iflt", ".ifle"):
            value = self._eval_const(args)
            return {".ifgt": value > 0, ".ifge": value >= 0, ".iflt": value < 0, ".ifle": value <= 0}[head]
        if head in (".ifc", ".ifnc", ".ifeqs", ".ifnes"):
            left, right = self._two_strings(args, stmt)
            same = left == right
            return same if head in (".ifc", ".ifeqs") else not same
        if head in (".ifb", ".ifnb"):
            blank = args.strip() == ""
            return blank if head == ".ifb" else not blank
        name = args.strip()
        defined = name in self.labels or name in self.equates
        return defined if head == ".ifdef" else not defined

    @staticmethod
    def _two_strings(args: str, stmt: Stmt) -> tuple[str, str]:
        # `.ifc a,b`: compared as written (after gas's scrubbing), optional quotes removed.
        text = mac.scrub(args)
        depth, split_at = 0, -1
        in_string: str | bool = False  # the quote the open string began with
        for i, ch in enumerate(text):
            if ch in "\"'" and (not in_string or in_string == ch):
                in_string = False if in_string else ch
            elif not in_string and ch == ",":
                split_at = i
                break
        if split_at < 0:
            raise stmt.error("expected two comma-separated strings")
        del depth

        def unquote(s: str) -> str:
            s = s.strip()
            if len(s) >= 2 and s[0] == s[-1] and s[0] in "\"'":
                return s[1:-1]
            return s

        return unquote(text[:split_at]), unquote(text[split_at + 1 :])

    # ------------------------------------------------------------------------------------- macros

    def _collecting(self, stmt: Stmt) -> None:
        collect = self.collect
        assert collect is not None
        rest = stmt.text
        while (m := _LABEL.match(rest)) is not None:
            rest = rest[m.end() :]
        m = _HEAD.match(rest)
        head = m.group(1).lower() if m else ""
        openers = (".macro",) if collect.kind == "macro" else (".rept", ".irp", ".irpc")
        closer = ".endm" if collect.kind == "macro" else ".endr"
        if head in openers:
            collect.depth += 1
        elif head == closer:
            collect.depth -= 1
            if collect.depth == 0:
                self.collect = None
                self._finish_collect(collect)
                return
        collect.body.append(stmt)

    def _finish_collect(self, collect: _Collect) -> None:
        if collect.kind == "macro":
            assert collect.macro is not None
            collect.macro.body = collect.body
            self.macros[collect.macro.name.lower()] = collect.macro
            return
        # repeat blocks expand in place, once per iteration
        expanded: list[Stmt] = []
        for values in collect.repeat:
            for body in collect.body:
                expanded.extend(self._substituted(body, values, None))
        self._push_stmts(expanded, None, collect.start)

    def _substituted(self, body: Stmt, values: dict[str, str], counter: int | None) -> list[Stmt]:
        text = mac.substitute(body.text, values, counter)
        parts = split_statements(text) if ";" in text else [(text, 0)]
        return [
            Stmt(part.strip(), body.asm_file, body.asm_line, body.col + start, body.file, body.line, body.line_text)
            for part, start in parts
            if part.strip()
        ]

    def _expand(self, macro: mac.Macro, args: str, stmt: Stmt) -> None:
        values = mac.bind(macro, args)
        self.macro_counter += 1
        counter = self.macro_counter - 1
        expanded: list[Stmt] = []
        for body in macro.body:
            expanded.extend(self._substituted(body, values, counter))
        self._push_stmts(expanded, macro.name, stmt)

    def _exitm(self, stmt: Stmt) -> None:
        while self.frames:
            frame = self.frames.pop()
            if frame.macro:
                return
        raise stmt.error(".exitm outside a macro")

    # ---------------------------------------------------------------------------------- directives

    def _args(self, text: str) -> list:
        return parse_arguments(text) if text.strip() else []

    def _needed(self, text: str, count: int, stmt: Stmt, what: str) -> list:
        trees = self._args(text)
        if len(trees) < count or any(t.data == "empty" for t in trees[:count]):
            raise stmt.error(f"expected {what}")
        return trees

    def _const_arg(self, tree: Tree, stmt: Stmt, what: str) -> int:
        try:
            return evaluate(tree, self).value()
        except NotConstant as err:
            raise stmt.error(f"{what}: {err}") from None

    def _directive(self, head: str, args: str, stmt: Stmt) -> None:
        if head in DATA_SIZES:
            size = DATA_SIZES[head]
            for tree in self._args(args):
                if tree.data != "empty":  # each value in turn: `.` in it is its own field (gas)
                    self._emit(Item(0, size, "data", src=self._srcloc(stmt)), data_value=self._data_expr(tree))
            return
        # each _d_<name> handler is called with both; one that does not need them names them _args, _stmt
        handler = getattr(self, "_d_" + head[1:].replace(".", "_"), None)
        if handler is not None:
            handler(args, stmt)
            return
        if head in IGNORED or head.startswith(".cfi_"):
            return
        raise stmt.error(f"unknown pseudo-op '{head}'")

    def _data_expr(self, tree: Tree) -> Lin | _Deferred:
        """A data value; one gas can only compute after layout (`(.L5 - .L3) / 4` in a jump table,
        across an alignment) is kept as its expression and evaluated in finish()."""
        try:
            return evaluate(tree, self)
        except NotConstant:
            frag = self.frag
            return _Deferred(tree, frag, frag.size)

    def _emit_bytes(self, data: bytes, stmt: Stmt) -> None:
        if data:
            self._emit(Item(0, len(data), "data", raw=data, src=self._srcloc(stmt)))

    # sections
    def _d_text(self, args: str, _stmt: Stmt) -> None:
        self._switch(self._section(".text", None), self._subsection_arg(args))

    def _d_data(self, args: str, _stmt: Stmt) -> None:
        self._switch(self._section(".data", None), self._subsection_arg(args))

    def _d_bss(self, args: str, _stmt: Stmt) -> None:
        self._switch(self._section(".bss", None), self._subsection_arg(args))

    def _subsection_arg(self, args: str) -> int:
        return self._eval_const(args) if args.strip() else 0

    def _section_args(self, args: str, stmt: Stmt, push: bool) -> tuple[SectionState, int]:
        # A section name is not an expression (`.note.GNU-stack`): take it as written, up to a comma.
        # A quoted name may hold any character but a quote (`"___ksymtab_gpl+ct_irq_enter"`).
        quoted = re.match(r'\s*"([^"\n]+)"\s*(?:,|$)', args)
        if quoted:
            name, tail = quoted.group(1), args[quoted.end():]
        else:
            name, _, tail = args.strip().partition(",")
            name = name.strip()
            if not name or not re.fullmatch(r"[A-Za-z0-9_.$\-]+", name):
                raise stmt.error("expected a section name")
        rest = self._args(tail) if tail.strip() else []
        subsection = 0
        if push and rest and rest[0].data not in ("string", "empty", "type_word"):
            subsection = self._const_arg(rest[0], stmt, "subsection")
            rest = rest[1:]
        flags = None
        if rest and rest[0].data == "string":
            flags = str(rest[0].children[0])[1:-1]
        return self._section(name, flags), subsection

    def _d_section(self, args: str, stmt: Stmt) -> None:
        section, subsection = self._section_args(args, stmt, push=False)
        self._switch(section, subsection)

    def _d_pushsection(self, args: str, stmt: Stmt) -> None:
        section, subsection = self._section_args(args, stmt, push=True)
        self.section_stack.append((self.cur, self.prev))
        self._switch(section, subsection)

    def _d_popsection(self, _args: str, stmt: Stmt) -> None:
        if not self.section_stack:
            raise stmt.error(".popsection without .pushsection")
        self.cur, self.prev = self.section_stack.pop()

    def _d_previous(self, _args: str, _stmt: Stmt) -> None:
        self.cur, self.prev = self.prev, self.cur

    def _d_subsection(self, args: str, _stmt: Stmt) -> None:
        self._switch(self.cur[0], self._eval_const(args))

    # layout
    def _align(self, nbytes: int, fill: int | None, max_skip: int | None, stmt: Stmt) -> None:
        if nbytes <= 1:
            return
        if nbytes & (nbytes - 1):
            raise stmt.error(f"alignment {nbytes} is not a power of 2")
        self._end_frag_aligned(nbytes, fill, max_skip, self._srcloc(stmt))

    def _end_frag_aligned(self, nbytes: int, fill: int | None, max_skip: int | None, src: SrcLoc) -> None:
        frag = self.frag
        frag.tail = Alignment(nbytes, fill, max_skip, src)
        self._new_frag()
        if self.cur[0].is_code():
            # gas marks every alignment frag in a code section `$x` (aarch64_init_frag), whatever came before
            self.cur[0].mapping = "code"

    def _align_args(self, args: str, stmt: Stmt) -> tuple[int, int | None, int | None]:
        trees = self._args(args)
        if not trees or trees[0].data == "empty":
            raise stmt.error("expected an alignment")
        values = [None if t.data == "empty" else self._const_arg(t, stmt, "alignment") for t in trees]
        values += [None] * (3 - len(values))
        power, fill, max_skip = values[:3]
        assert power is not None  # the first argument is not empty (above)
        if not 0 <= power <= 1 << 16:
            raise stmt.error(f"alignment {power} out of range")
        return power, fill, max_skip

    def _d_align(self, args: str, stmt: Stmt) -> None:
        power, fill, max_skip = self._align_args(args, stmt)
        if power > 16:
            raise stmt.error(f"alignment 2**{power} out of range")
        self._align(1 << power, fill, max_skip, stmt)  # on AArch64 `.align n` is 2**n

    _d_p2align = _d_align

    def _d_balign(self, args: str, stmt: Stmt) -> None:
        nbytes, fill, max_skip = self._align_args(args, stmt)
        self._align(nbytes, fill, max_skip, stmt)

    def _d_org(self, args: str, stmt: Stmt) -> None:
        trees = self._needed(args, 1, stmt, "a location")
        target = evaluate(trees[0], self)
        fill = self._const_arg(trees[1], stmt, ".org fill") if len(trees) > 1 else 0
        frag = self.frag
        at_section_start = frag is self.cur[0].subsections[self.cur[1]][0] and self.cur[1] == 0
        if target.terms == {frag: 1} or (target.is_const() and at_section_start):
            pad = target.const - frag.size
        else:
            raise stmt.error(".org to a location outside the current fragment is not supported")
        if pad < 0:
            raise stmt.error("attempt to move .org backwards")
        mapping = self.cur[0].mapping
        for item in _fill_items(pad, fill, mapping == "code", self._srcloc(stmt)):
            self._emit(item)
        self.cur[0].mapping = mapping

    def _d_space(self, args: str, stmt: Stmt) -> None:
        trees = self._needed(args, 1, stmt, "a size")
        count = self._const_arg(trees[0], stmt, "size")
        fill = self._const_arg(trees[1], stmt, "fill") if len(trees) > 1 else 0
        if count < 0 or count > MAX_SPACE:
            raise stmt.error(f"size {count} out of range")
        self._emit_bytes(bytes([fill & 0xFF]) * count, stmt)

    _d_skip = _d_space
    _d_zero = _d_space

    def _d_fill(self, args: str, stmt: Stmt) -> None:
        trees = self._needed(args, 1, stmt, "a repeat count")
        repeat = self._const_arg(trees[0], stmt, "repeat")
        size = self._const_arg(trees[1], stmt, "size") if len(trees) > 1 else 1
        value = self._const_arg(trees[2], stmt, "value") if len(trees) > 2 else 0
        if not 0 <= repeat * size <= MAX_SPACE or size < 0:
            raise stmt.error(f".fill {repeat}, {size} out of range")
        size = min(size, 8)
        word = (value & 0xFFFFFFFF).to_bytes(4, "little") + bytes(4)
        self._emit_bytes(word[:size] * repeat, stmt)

    def _strings(self, args: str, stmt: Stmt, terminate: bool) -> None:
        # adjacent literals with no comma between them are one string, as GNU as joins them
        # (`.ascii "" "\0"`, from the kernel's stringified macros)
        args = _join_adjacent_strings(args)
        for tree in self._args(args):
            if tree.data != "string":
                raise stmt.error("expected a string")
            data = _decode_string(str(tree.children[0]))
            self._emit_bytes(data + (b"\0" if terminate else b""), stmt)

    def _d_ascii(self, args: str, stmt: Stmt) -> None:
        self._strings(args, stmt, False)

    def _d_asciz(self, args: str, stmt: Stmt) -> None:
        self._strings(args, stmt, True)

    _d_string = _d_asciz

    def _d_inst(self, args: str, stmt: Stmt) -> None:
        for tree in self._args(args):
            word = self._const_arg(tree, stmt, ".inst") & 0xFFFFFFFF
            self._emit_inst_word(word, stmt)

    def _emit_inst_word(self, word: int, stmt: Stmt) -> None:
        raw = word.to_bytes(4, "little")
        insn = decode_word(word, self.cur[0].name, 0)
        if insn is None:
            self._emit(Item(0, 4, "undecoded", raw=raw, reason=f"cannot decode .inst {word:#010x}",
                            src=self._srcloc(stmt)))
        else:
            self._emit(Item(0, 4, "insn", insn=insn, raw=raw, src=self._srcloc(stmt)), redecode=True)

    # symbols
    def _names(self, args: str) -> list[str]:
        return [n.strip() for n in args.split(",") if n.strip()]

    def _d_globl(self, args: str, _stmt: Stmt) -> None:
        for name in self._names(args):
            self.globals[name] = "global"

    _d_global = _d_globl

    def _d_weak(self, args: str, _stmt: Stmt) -> None:
        for name in self._names(args):
            self.globals[name] = "weak"

    def _d_local(self, args: str, _stmt: Stmt) -> None:
        for name in self._names(args):
            self.local_names.add(name)
            self.globals.pop(name, None)

    def _layout_dialect(self) -> Dialect:
        if self.dialect is None:
            try:
                text = self.path.read_text(errors="replace")
            except OSError:
                text = ""
            self.dialect = "llvm" if _LLVM_ONLY.search(text) else "gnu"
        return self.dialect

    def _d_comm(self, args: str, stmt: Stmt) -> None:
        """`.comm sym, size[, align]` (how gcc and clang write static zero-initialised data): the linker's
        common symbol, or for a `.local` one `size` zero bytes in .bss. GNU as puts those in .bss
        subsection 1, after the rest of .bss; LLVM's assembler appends them to .bss where it stands."""
        trees = self._needed(args, 2, stmt, "`symbol, size[, alignment]`")
        if trees[0].data != "symbol":
            raise stmt.error("expected a symbol name")
        name = str(trees[0].children[0])
        size = self._const_arg(trees[1], stmt, ".comm size")
        align = self._const_arg(trees[2], stmt, ".comm alignment") if len(trees) > 2 and trees[2].data != "empty" else 1
        if not 0 <= size <= MAX_SPACE:
            raise stmt.error(f".comm size {size} out of range")
        if name not in self.local_names:
            self.globals.setdefault(name, "global")
            return
        saved = (self.cur, self.prev)
        self._switch(self._section(".bss", None), 1 if self._layout_dialect() == "gnu" else 0)
        self._align(align, 0, None, stmt)
        self._define_label(name, stmt)
        self._emit_bytes(bytes(size), stmt)
        self.sizes[name] = Lin(size)
        self.cur, self.prev = saved

    def _d_type(self, args: str, _stmt: Stmt) -> None:
        parts = self._names(args)
        if len(parts) >= 2:
            self.types[parts[0]] = parts[1].lstrip("@%").replace("STT_", "").lower()

    def _d_size(self, args: str, _stmt: Stmt) -> None:
        trees = self._args(args)
        if len(trees) == 2 and trees[0].data == "symbol":
            self.sizes[str(trees[0].children[0])] = evaluate(trees[1], self)

    def _d_set(self, args: str, stmt: Stmt) -> None:
        name, _, expr = args.partition(",")
        name = name.strip()
        if not name or not expr.strip():
            raise stmt.error("expected `symbol, expression`")
        self.equates[name] = evaluate(parse_expr(expr), self)

    _d_equ = _d_set

    def _d_equiv(self, args: str, stmt: Stmt) -> None:
        name = args.partition(",")[0].strip()
        if name in self.equates or name in self.labels:
            raise stmt.error(f"symbol '{name}' is already defined")
        self._d_set(args, stmt)

    _d_eqv = _d_equiv

    def _d_unreq(self, args: str, _stmt: Stmt) -> None:
        self.aliases.pop(args.strip().lower(), None)

    def _d_include(self, args: str, stmt: Stmt) -> None:
        name = args.strip()
        if len(name) < 2 or name[0] != '"' or name[-1] != '"':
            raise stmt.error('expected a quoted file name: .include "file"')
        # like gas: relative to the including file's directory, then to the current directory
        candidates = [Path(stmt.asm_file).parent / name[1:-1], Path(name[1:-1])]
        path = next((c for c in candidates if c.is_file()), None)
        if path is None:
            raise stmt.error(f"cannot find include file {name}")
        if sum(1 for f in self.frames if f.macro == "") > 20:
            raise stmt.error(".include nested too deeply")
        parent = self.frames[-1].stack if self.frames else ()
        self.frames.append(_Frame(read_statements(path, self.root, self.namer), "", None, parent))

    def _d_loc(self, args: str, _stmt: Stmt) -> None:
        parts = args.split()
        if len(parts) >= 2 and parts[0].isdigit() and parts[1].isdigit():
            name = self.file_names.get(int(parts[0]))
            if name:
                # Line 0 is the line tables' "no source line" (code the compiler made up).
                self.loc_override = (name, int(parts[1])) if int(parts[1]) else None

    def _d_file(self, args: str, _stmt: Stmt) -> None:
        found = dwarf_file(args)
        if found:
            self.file_names[found[0]] = self.namer.name(found[1])

    # diagnostics
    def _d_error(self, args: str, stmt: Stmt) -> None:
        message = args.strip()
        if message.startswith('"'):
            message = _decode_string(message).decode(errors="replace")
        raise stmt.error(f".error directive invoked in source file: {message}")

    def _d_err(self, _args: str, stmt: Stmt) -> None:
        raise stmt.error(".err encountered")

    def _d_warning(self, args: str, stmt: Stmt) -> None:
        self.warnings.append(f"{stmt.asm_file}:{stmt.asm_line}: warning: {args.strip()}")

    def _d_print(self, _args: str, _stmt: Stmt) -> None:
        pass

    # macro language
    def _d_macro(self, args: str, stmt: Stmt) -> None:
        name, params = mac.parse_params(args)
        self.collect = _Collect("macro", stmt, macro=mac.Macro(name, params))

    def _d_endm(self, _args: str, stmt: Stmt) -> None:
        raise stmt.error(".endm without .macro")

    def _d_exitm(self, _args: str, stmt: Stmt) -> None:
        self._exitm(stmt)

    def _d_purgem(self, args: str, stmt: Stmt) -> None:
        name = args.strip().lower()
        if name not in self.macros:
            raise stmt.error(f"macro '{args.strip()}' is not defined")
        del self.macros[name]

    def _d_rept(self, args: str, stmt: Stmt) -> None:
        count = self._eval_const(args)
        if count > MAX_REPEAT:
            raise stmt.error(f".rept count {count} is larger than {MAX_REPEAT}")
        self.collect = _Collect("rept", stmt, repeat=[{} for _ in range(max(count, 0))])

    def _d_irp(self, args: str, stmt: Stmt) -> None:
        parts = mac.split_args(args)
        if not parts or not parts[0]:
            raise stmt.error("expected a symbol after .irp")
        symbol, values = parts[0], parts[1:] or [""]
        self.collect = _Collect("rept", stmt, repeat=[{symbol: v} for v in values])

    def _d_irpc(self, args: str, stmt: Stmt) -> None:
        parts = mac.split_args(args)
        if not parts or not parts[0]:
            raise stmt.error("expected a symbol after .irpc")
        chars = "".join(parts[1:])
        self.collect = _Collect("rept", stmt, repeat=[{parts[0]: c} for c in chars] or [{parts[0]: ""}])

    def _d_endr(self, _args: str, stmt: Stmt) -> None:
        raise stmt.error(".endr without .rept or .irp")

    def _d_altmacro(self, _args: str, stmt: Stmt) -> None:
        raise stmt.error(".altmacro is not supported")

    def _d_noaltmacro(self, _args: str, _stmt: Stmt) -> None:
        pass

    def _d_ltorg(self, _args: str, stmt: Stmt) -> None:
        self._dump_pools(self._srcloc(stmt))

    _d_pool = _d_ltorg

    def _dump_pools(self, src: SrcLoc | None) -> None:
        """The current section's literal pools, here (gas's s_ltorg): each aligned to its entry size with
        zeros (`$x` in code), its label, then its entries as data."""
        section, subsection = self.cur
        for pool in self.pools.take(section.name, subsection):
            assert pool.label is not None
            self._end_frag_aligned(pool.size, 0, None, src or pool.entries[0].src)
            frag = self.frag
            self.labels[pool.label] = (frag, frag.size)
            for entry in pool.entries:
                self._emit(Item(0, pool.size, "data", src=entry.src), data_value=entry.value)

    def _dump_remaining_pools(self) -> None:
        """At the end of the file each pool left goes to the end of its section (gas's aarch64_cleanup)."""
        for name, subsection in self.pools.places():
            self.cur = (self.sections[name], subsection)
            self._dump_pools(None)

    # -------------------------------------------------------------------------------- instructions

    def _instruction(self, mnemonic: str, args: str, stmt: Stmt) -> None:
        src = self._srcloc(stmt)
        try:
            trees = parse_operands(args) if args.strip() else []
            operands = lower_operands(mnemonic, trees, self)
        except Unsupported as err:
            self._emit(Item(0, 4, "undecoded", reason=str(err), src=src))
            return
        self._emit(Item(0, 4, "insn", insn=Insn(mnemonic, operands), src=src))

    # ------------------------------------------------------------------------------------- layout

    def finish(self) -> Program:
        program = Program(str(self.path), source_root=self.namer.root)
        laid_out: dict[str, list[_Entry]] = {}  # each section's entries at their final offsets
        labelled_sections = {frag.section.name for frag, _ in self.labels.values()}
        for state in self.sections.values():
            address = 0
            entries: list[_Entry] = []
            for subsection in sorted(state.subsections):
                for frag in state.subsections[subsection]:
                    frag.address = address
                    for entry in frag.entries:
                        entry.item.offset += address
                        entries.append(entry)
                    address += frag.size
                    if frag.tail:
                        start = address
                        for item in self._padding(frag.tail, start, state):
                            item.offset += start
                            entries.append(_Entry(item))
                            address += item.size
            labelled = state.name in labelled_sections  # clang's `.Lline_table_start0` in an empty .debug_line
            if not entries and state.name != ".text" and not labelled:
                continue
            if not entries and not state.subsections:
                continue
            program.sections[state.name] = Section(state.name, state.flags, [e.item for e in entries], address)
            laid_out[state.name] = entries
        for section, entries in laid_out.items():
            for entry in entries:
                self._resolve_entry(entry, section)
        self._symbols(program)
        if not program.sections.get(".text", Section(".text")).items:
            program.sections.pop(".text", None)
        program.alternatives = decode_alternatives(program)
        return program

    @staticmethod
    def _padding(tail: Alignment, address: int, state: SectionState) -> list[Item]:
        pad = (-address) % tail.nbytes
        if pad == 0 or (tail.max_skip is not None and pad > tail.max_skip):
            return []
        # In a code section gas pads under `$x` whatever came before (checked against aarch64-linux-gnu-as
        # 2.40: `.word 1; .balign 16` and `.word 1; .balign 16, 0` both put $x right after the word): NOPs
        # after any odd bytes, or the fill pattern as words. An explicit fill starting at an odd offset
        # gets its `$x` there, which words from the next multiple of 4 do not mirror (no input does that).
        return _fill_items(pad, tail.fill, state.is_code(), tail.src)

    def _term_value(self, key: Hashable) -> Lin | None:
        if isinstance(key, Frag):
            return Lin(key.address, {("sec", key.section.name): 1})
        if isinstance(key, tuple) and key[0] == "sym":
            name = key[1]
            if name in self.labels:
                frag, offset = self.labels[name]
                return Lin(frag.address + offset, {("sec", frag.section.name): 1})
            if name in self.equates:
                return self.equates[name].substitute(self._term_value)
            if name in self.sections:  # a section symbol referenced before its section existed
                return Lin(0, {("sec", name): 1})
        return None

    @staticmethod
    def _target(final: Lin) -> Target:
        """A laid-out value as a relocation target: a constant (spelt `*ABS*`+value), a place here or a symbol."""
        if final.is_const():
            return Loc("*ABS*", final.const)
        if len(final.terms) == 1:
            (term, coeff), = final.terms.items()
            if coeff == 1:
                key = _named(term)
                if key[0] == "sec":
                    return Loc(key[1], final.const)
                return SymRef(key[1], final.const)
        raise NotConstant("expression too complex for a relocation")

    def _resolve_entry(self, entry: _Entry, section: str) -> None:
        item = entry.item
        if entry.redecode:
            assert item.raw is not None
            item.insn = decode_word(int.from_bytes(item.raw, "little"), section, item.offset)
            return
        if item.kind == "insn" and item.insn is not None:
            try:
                item.insn = _apply_constant_relocs(resolve_pending(item.insn, self._resolve_pending))
            except NotConstant as err:
                raise self._item_error(item, str(err)) from None
        elif entry.data_value is not None:
            value = self._data_value(entry.data_value, item.size, section, item.offset, item)
            item.data = (value,)
            if value.target is None:
                item.raw = (value.value & ((1 << (8 * value.size)) - 1)).to_bytes(value.size, "little")

    def _item_error(self, item: Item, message: str) -> UserError:
        src = item.src
        return UserError(message, src.asm_file if src else str(self.path), src.asm_line if src else None)

    def _resolve_pending(self, pending: Pending) -> Operand:
        final = pending.value.substitute(self._term_value)
        if pending.role == "imm" and final.is_const():
            return Imm(final.const)
        return pending.with_target(self._target(final))

    def _data_value(self, value: Lin | _Deferred, size: int, section: str, address: int, item: Item) -> DataValue:
        if isinstance(value, _Deferred):
            try:
                value = evaluate(value.tree, _LaidOut(self, value))
            except NotConstant as err:
                raise self._item_error(item, str(err)) from None
        final = value.substitute(self._term_value)
        if final.is_const():
            return DataValue(size, final.const)
        own = ("sec", section)
        if final.terms.get(own) == -1 and len(final.terms) == 2:
            (term, coeff), = ((k, c) for k, c in final.terms.items() if k != own)
            if coeff == 1:
                # value = target - (section base + s): a PC-relative field; gas's `.` is this field
                key = _named(term)
                addend = final.const + address
                target = Loc(key[1], addend) if key[0] == "sec" else SymRef(key[1], addend)
                return DataValue(size, 0, target, pcrel=True)
        if len(final.terms) == 1:
            (term, coeff), = final.terms.items()
            if coeff == 1:
                key = _named(term)
                target = Loc(key[1], final.const) if key[0] == "sec" else SymRef(key[1], final.const)
                return DataValue(size, 0, target)
        raise self._item_error(item, "data expression too complex for a relocation")

    def _symbols(self, program: Program) -> None:
        for name, (frag, offset) in self.labels.items():
            if "\x02" in name:
                continue
            loc = Loc(frag.section.name, frag.address + offset)
            size = None
            if name in self.sizes:
                try:
                    size = self.sizes[name].substitute(self._term_value).value()
                except NotConstant:
                    size = None
            program.symbols[name] = Symbol(name, loc, self.globals.get(name, "local"), self.types.get(name, ""),
                                           size)
        for name, binding in self.globals.items():
            if name not in program.symbols:
                program.symbols[name] = Symbol(name, None, binding, self.types.get(name, ""))


def _fill_items(pad: int, fill: int | None, code: bool, src: SrcLoc | None) -> list[Item]:
    """Padding as items with offsets from 0: zero (or `fill`) bytes as data, or, where gas's mapping
    state says code, the odd bytes as data and then words that decode as instructions (NOPs when
    `fill` is None, else the fill pattern, e.g. `udf #0`)."""
    if not code:
        return [Item(0, pad, "data", raw=bytes([(fill or 0) & 0xFF]) * pad, src=src)]
    out: list[Item] = []
    odd = pad % 4
    if odd:
        out.append(Item(0, odd, "data", raw=bytes(odd), src=src))
    word = NOP if fill is None else int.from_bytes(bytes([fill & 0xFF]) * 4, "little")
    insn = decode_word(word, "", 0)
    for i in range(pad // 4):
        raw = word.to_bytes(4, "little")
        if insn is None:
            out.append(Item(odd + 4 * i, 4, "undecoded", raw=raw, reason=f"fill word {word:#010x}", src=src))
        else:
            out.append(Item(odd + 4 * i, 4, "insn", insn=insn, raw=raw, src=src))
    return out


_MOVW = {"abs_g0": 0, "abs_g0_nc": 0, "abs_g0_s": 0, "abs_g1": 16, "abs_g1_nc": 16, "abs_g1_s": 16,
         "abs_g2": 32, "abs_g2_nc": 32, "abs_g2_s": 32, "abs_g3": 48}


def _apply_constant_relocs(insn: Insn) -> Insn:
    """`movz x0, :abs_g1_s:0x1234` with a constant: gas computes the field (and may pick movn)."""
    operands = list(insn.operands)
    mnemonic = insn.mnemonic
    for i, op in enumerate(operands):
        if isinstance(op, Reloc) and isinstance(op.target, Loc) and op.target.section == "*ABS*":
            value = op.target.offset
            if op.kind in _MOVW:
                shift = _MOVW[op.kind]
                if op.kind.endswith("_s") and value < 0 and mnemonic == "movz":
                    mnemonic = "movn"
                    value = ~value
                field = (value >> shift) & 0xFFFF
                operands[i] = Shifted(Imm(field), "lsl", shift) if shift else Imm(field)
            elif op.kind in ("lo12", "lo12_nc"):
                operands[i] = Imm(value & 0xFFF)
    return Insn(mnemonic, tuple(operands))


_STRING_TOKENS = re.compile(r'"(?:[^"\\\n]|\\.)*"|[ \t]+|[^" \t]+')


def _join_adjacent_strings(args: str) -> str:
    """`"a" "b"` as `"ab"`: string literals with only blanks between them are one (GNU as)."""
    out: list[str] = []
    for token in _STRING_TOKENS.findall(args):
        if token.startswith('"') and len(out) >= 2 and out[-1].isspace() and out[-2].startswith('"'):
            out.pop()
            out[-1] = out[-1][:-1] + token[1:]
        else:
            out.append(token)
    return "".join(out)


def lift_file(path: str | Path, root: str | None = None, dialect: Dialect | None = None) -> Program:
    """Lift a GNU as `.s` file into the IR, laid out as `dialect`'s assembler does (default: LLVM's for
    clang's output, which has `.addrsig`, else GNU as)."""
    p = Path(path)
    if not p.is_file():
        raise UserError("no such file", str(p))
    return Assembler(p, root, dialect).run()

