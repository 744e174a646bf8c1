"""Run a counterexample's path on Unicorn and compare it, step by step, with the prover's replay.

Unicorn executes the linked objects (its own decoder, its own instruction semantics, real bytes of memory)
from the initial state the model gives: the registers and system registers of the replay's first step and
the initial memory words the model names, at the addresses the layout pinned. The run must visit the
replay's instructions in order, with the replay's DAIF and MDSCR_EL1 before each, and reach the last one
with the replay's registers. What Unicorn is not asked to decide comes from the model, as the environment:
- a call the proof summarised by a contract lands on a stub (or outside the lifted code); the registers,
  DAIF and system registers the replay has after it are set, and the memory words of each class the
  contract forgot are written with the model's new values (the contract's choices);
- an alternative the model patched in is entered where the replay entered it, and left where it left;
- a system register read for the first time gives the model's value (Unicorn has no GIC and no
  firmware-set ID registers); later reads give what the code wrote.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

import unicorn
import unicorn.arm64_const as uc_const
import z3

from verifier.confirm.layout import address_of
from verifier.confirm.objects import Linked
from verifier.engine.image import Image
from verifier.engine.replay import Replayed, Snapshot
from verifier.ir import sysregs
from verifier.ir.canon import canonical
from verifier.ir.program import Imm, Name, Reg, SysReg
from verifier.semantics.names import entry_value, sve_length_field, vector_length
from verifier.semantics.state import DAIF_REG, MDSCR, NZCV_REG, SP_EL0

if TYPE_CHECKING:
    from unicorn.unicorn_py3.arch.arm64 import UcAArch64

PAGE = 0x1000
M64 = (1 << 64) - 1
# PSTATE and the stack pointers: Unicorn's own (they steer its execution); every other system register is
# held by the run
NATIVE = {DAIF_REG, NZCV_REG, SP_EL0, sysregs.known("currentel"), sysregs.known("spsel"),
          sysregs.known("pan"), sysregs.known("uao")}
# system registers the run holds whose writes keep only some bits (GICv3: ICC_PMR_EL1.Priority is bits 7:0,
# RES0 above; Unicorn 2.1 has no GIC CPU interface)
HELD_WIDTHS = {sysregs.known("icc_pmr_el1"): 0xFF}
# PSTATE fields Unicorn 2.1's CPU has not (it raises an exception at `msr tco, #0`, and has no SME): held by
# the run, each at its bits in the register its MRS reads (SMSTART/SMSTOP set and clear SVCR.SM and SVCR.ZA)
HELD_FIELDS = {"tco": ("tco", 1 << 25), "dit": ("dit", 1 << 24), "ssbs": ("ssbs", 1 << 12),
               "svcrsm": ("svcr", 1), "svcrza": ("svcr", 2), "svcrsmza": ("svcr", 3)}
# FP/SIMD and SVE not trapped at EL1 (CPACR_EL1.FPEN and ZEN, CPTR_EL3.EZ), and every SVE vector length
# ZCR_EL1 may ask for allowed by the higher levels (ZCR_EL2/EL3.LEN = 15): the run sets ZCR_EL1.LEN to the
# model's, and Unicorn's own rdvl reads the length from it.
VECTOR_UNIT = (("cpacr_el1", 0x330000), ("cptr_el3", 1 << 8), ("zcr_el3", 15), ("zcr_el2", 15))
X_IDS = [getattr(uc_const, f"UC_ARM64_REG_X{i}") for i in range(29)] + [uc_const.UC_ARM64_REG_X29,
                                                                        uc_const.UC_ARM64_REG_X30]


@dataclass
class Confirmation:
    reproduced: bool
    why: str  # reproduced: what was compared; refused: the first difference
    steps: int  # replay steps Unicorn matched

    def json(self) -> dict[str, object]:
        return {"engine": f"unicorn {unicorn.__version__}", "reproduced": self.reproduced, "why": self.why,
                "steps": self.steps}


class _Refused(Exception):
    pass


def _cp_fields(register: str) -> tuple[int, int, int, int, int]:
    """A system register's op0, op1, CRn, CRm, op2, as Unicorn's cpr_write takes them."""
    encoding = sysregs.known(register)
    return (encoding >> 14) & 3, (encoding >> 11) & 7, (encoding >> 7) & 15, (encoding >> 3) & 15, encoding & 7


def _daif_bits(text: str) -> int:
    return sum(bit for flag, bit in zip("DAIF", (8, 4, 2, 1), strict=True) if flag in text)


class Run:
    """One lockstep run of a replayed path."""

    def __init__(self, image: Image, linked: Linked, replayed: Replayed, model: z3.ModelRef) -> None:
        self.image, self.linked, self.replayed, self.model = image, linked, replayed, model
        # Uc() gives the architecture's subclass (with cpr_write), its annotation says Uc
        self.uc = cast("UcAArch64", unicorn.Uc(unicorn.UC_ARCH_ARM64, unicorn.UC_MODE_ARM))
        self.uc.ctl_set_cpu_model(uc_const.UC_CPU_ARM64_MAX)
        self.mapped: set[int] = set()
        self.sysregs: dict[int, int] = {}
        self.step = 0
        self.alt_exits: dict[int, int] = {}  # end of an entered replacement -> where the replay goes on
        # the start of each alternative's replacement -> (its site, the replacement's length, the site's length)
        self.replacements = {repl: (site_address, site.repl_len, site.orig_len)
                             for site_address, sites in image.alternatives.items()
                             for site, _, repl in sites if repl is not None and site.repl_len}
        # what a callback wrote at a site, placed apart as the prover placed it (image.patched_code)
        for start, (site_address, words) in image.patched.items():
            self.replacements[start] = (site_address, 4 * len(words), 4 * len(words))
        self.result: Confirmation | None = None

    # ------------------------------------------------------------------------------------ state

    def value(self, term: z3.ExprRef) -> int:
        result = self.model.eval(term, model_completion=True)
        return result.as_long() if z3.is_bv_value(result) else 0

    def map(self, address: int, size: int = 1) -> None:
        first, last = address & ~(PAGE - 1), (address + max(size, 1) - 1) & ~(PAGE - 1)
        for page in range(first, last + PAGE, PAGE):
            if page not in self.mapped:
                self.uc.mem_map(page, PAGE)
                self.mapped.add(page)

    def write(self, address: int, data: bytes | bytearray) -> None:
        self.map(address, len(data))
        self.uc.mem_write(address, bytes(data))

    def set_registers(self, snap: Snapshot) -> None:
        for index, term in enumerate(snap.x):
            self.uc.reg_write(X_IDS[index], self.value(term))
        self.uc.reg_write(uc_const.UC_ARM64_REG_SP_EL0, self.value(snap.sp_el0))
        self.uc.reg_write(uc_const.UC_ARM64_REG_SP, self.value(snap.sp_el1))
        pstate = self.uc.reg_read(uc_const.UC_ARM64_REG_PSTATE) & ~0xF00003C0
        self.uc.reg_write(uc_const.UC_ARM64_REG_PSTATE,
                          pstate | self.value(snap.nzcv) << 28 | self.value(snap.daif) << 6)
        for encoding, term in snap.sysregs.items():
            if encoding not in NATIVE:
                self.sysregs[encoding] = self.value(term)

    def initial_memory(self) -> None:
        for address, raw in self.linked.chunks:
            self.write(address, raw)
        for address in [*self.linked.stubs, *self.linked.far]:
            self.map(address, 4)
        for start, (site, words) in self.image.patched.items():  # a kept word is the site's own
            for index, word in enumerate(words):
                self.map(site + 4 * index, 4)
                data = bytes(self.uc.mem_read(site + 4 * index, 4)) if word < 0 else word.to_bytes(4, "little")
                self.write(start + 4 * index, data)
        self.memory_words(epochs=None)

    def memory_words(self, epochs: dict[str, int] | None, classify: object = None) -> None:
        """The initial memory words the path read, as the model has them: of epoch 0 (epochs None), or of each
        class's given epoch. Lifted data is the objects' own."""
        for region, word, epoch, term in self.replayed.initial_words:
            if not region.bases:
                continue
            if epochs is None:
                if epoch != 0:
                    continue
            else:
                assert callable(classify)
                if epoch == 0 or epochs.get(classify(region)) != epoch:
                    continue
            address = address_of(region.bases, word, self.model)
            self.write(address, self.value(term).to_bytes(8, "little"))

    # ------------------------------------------------------------------------------------ hooks
    # Unicorn calls them with its hook signatures (positionally): what they do not use is `_`-named.

    def on_code(self, uc: unicorn.Uc, address: int, _size: int, _user: object) -> None:
        try:
            self._on_code(address)
        except _Refused as refused:
            self.result = Confirmation(False, str(refused), self.step)
            uc.emu_stop()

    def _on_code(self, address: int) -> None:
        trace, addresses, snaps = self.replayed.trace, self.replayed.addresses, self.replayed.snapshots
        if self.result is not None:
            return
        if address in self.linked.far:
            self.uc.reg_write(uc_const.UC_ARM64_REG_PC, self.linked.far[address])
            return
        expected = addresses[self.step]
        if address != expected:
            self._redirect(address, expected)
            return
        if address in self.replacements:
            # the replay is in an alternative's replacement (however it got here: from its site, from the end
            # of the replacement before it, back from a summarised call): its end leads on after the site
            site_address, length, replaced = self.replacements[address]
            self.alt_exits[address + length] = site_address + replaced
        step = trace[self.step]
        pstate = self.uc.reg_read(uc_const.UC_ARM64_REG_PSTATE)
        if (pstate >> 6) & 0xF != _daif_bits(step["daif"]):
            raise _Refused(f"DAIF differs before {step['file']}:{step['line']} `{step['insn']}`: Unicorn "
                           f"{pstate >> 6 & 0xF:#x}, the prover {step['daif']}")
        mdscr = self.sysregs.get(MDSCR)
        if mdscr is not None and mdscr != int(step["mdscr"], 16):
            raise _Refused(f"MDSCR_EL1 differs before {step['file']}:{step['line']} `{step['insn']}`: Unicorn "
                           f"{mdscr:#x}, the prover {step['mdscr']}")
        if self.step == len(addresses) - 1:
            self._final(snaps[self.step], step)
            return
        self.step += 1
        self._held_field(address)
        self._streaming_rdvl(address)
        self._system_register(address)
        self._call_outside(address)
        self._firmware_call(address)
        if self.image.warns_at(address):
            # a WARN()'s brk: the kernel's handler reports and returns past it (Unicorn would raise instead)
            self.uc.reg_write(uc_const.UC_ARM64_REG_PC, address + 4)

    def _system_register(self, address: int) -> None:
        """`mrs`/`msr` of a system register other than PSTATE's and the stack pointers': the run holds it (its
        first value is the model's), and goes on past the instruction."""
        code = self.image.code(address)
        insn = canonical(code.item.insn) if code is not None and code.item.insn is not None else None
        if insn is None or insn.mnemonic not in ("mrs", "msr") or len(insn.operands) != 2:
            return
        register, sysreg = insn.operands if insn.mnemonic == "mrs" else reversed(insn.operands)
        if isinstance(sysreg, Name):
            encoding = sysregs.encode(sysreg.name)
        elif isinstance(sysreg, SysReg):
            encoding = sysreg.encoding
        else:
            return
        if encoding is None or encoding in NATIVE or not isinstance(register, Reg):
            return
        name = register.name
        index = None if name in ("xzr", "wzr") else int(name[1:])
        if insn.mnemonic == "msr":
            value = 0 if index is None else self.uc.reg_read(X_IDS[index])
            self.sysregs[encoding] = value & HELD_WIDTHS.get(encoding, M64)
        else:
            if encoding not in self.sysregs:
                # first read: the value the replay read (its next step holds it)
                later = self.replayed.snapshots[self.step]
                self.sysregs[encoding] = self.value(later.sysregs[encoding]) if encoding in later.sysregs else 0
            if index is not None:
                value = self.sysregs[encoding]
                self.uc.reg_write(X_IDS[index], value if name[0] == "x" else value & 0xFFFF_FFFF)
        self.uc.reg_write(uc_const.UC_ARM64_REG_PC, address + 4)

    def _firmware_call(self, address: int) -> None:
        """An `hvc`/`smc`: the prover summarised it by the firmware's contract; the state after it is the
        model's (Unicorn has no firmware; it would raise)."""
        code = self.image.code(address)
        if code is None or code.item.insn is None or canonical(code.item.insn).mnemonic not in ("hvc", "smc"):
            return
        self._summarised(self.replayed.addresses[self.step])

    def _call_outside(self, address: int) -> None:
        """A call the prover summarised by its contract (it entered no frame): the run does too, at the call,
        without fetching from wherever the pointer points (a model's pointer may even hit lifted code)."""
        code = self.image.code(address)
        insn = canonical(code.item.insn) if code is not None and code.item.insn is not None else None
        if insn is None or insn.mnemonic not in ("bl", "blr"):
            return
        snaps = self.replayed.snapshots
        if snaps[self.step].depth > snaps[self.step - 1].depth:
            return  # followed into the callee: Unicorn branches there itself
        self.uc.reg_write(uc_const.UC_ARM64_REG_X30, address + 4)
        self._summarised(self.replayed.addresses[self.step])

    def _held_field(self, address: int) -> None:
        """`msr tco|dit|ssbs, #imm`: the run writes the field and goes on past it."""
        code = self.image.code(address)
        insn = canonical(code.item.insn) if code is not None and code.item.insn is not None else None
        if insn is None or insn.mnemonic != "msr" or len(insn.operands) != 2:
            return
        field, imm = insn.operands
        name = field.name.lower() if isinstance(field, Name) else ""
        if name in HELD_FIELDS and isinstance(imm, Imm):
            register, mask = HELD_FIELDS[name]
            encoding = sysregs.known(register)
            old = self.held(register)
            self.sysregs[encoding] = (old & ~mask) | (mask if imm.value & 1 else 0)
            self.uc.reg_write(uc_const.UC_ARM64_REG_PC, address + 4)

    def _streaming_rdvl(self, address: int) -> None:
        """`rdvl xd, #imm` in streaming mode (the held SVCR.SM set): Unicorn 2.1 has no SME, so the run gives imm
        times the model's streaming vector length and goes on past it."""
        code = self.image.code(address)
        insn = canonical(code.item.insn) if code is not None and code.item.insn is not None else None
        if insn is None or insn.mnemonic != "rdvl" or not self.held("svcr") & 1:
            return
        register, imm = insn.operands
        assert isinstance(register, Reg) and isinstance(imm, Imm)
        length = self.value(vector_length(streaming=True))
        self.uc.reg_write(X_IDS[int(register.name[1:])], (length * imm.value) & M64)
        self.uc.reg_write(uc_const.UC_ARM64_REG_PC, address + 4)

    def held(self, register: str) -> int:
        """A system register the run holds; never read or written yet: its value at the vector, the model's."""
        encoding = sysregs.known(register)
        if encoding not in self.sysregs:
            self.sysregs[encoding] = self.value(entry_value(register))
        return self.sysregs[encoding]

    def _redirect(self, address: int, expected: int) -> None:
        """Unicorn is elsewhere than the replay: an alternative the model patched in, a summarised call;
        else a divergence."""
        if address in self.alt_exits:  # the end of a replacement: on after the site it replaced
            self.uc.reg_write(uc_const.UC_ARM64_REG_PC, self.alt_exits[address])
            return
        if self.image.patched.get(expected, (None,))[0] == address:  # the site as its callback wrote it
            self.uc.reg_write(uc_const.UC_ARM64_REG_PC, expected)
            return
        for site, _, repl in self.image.alternatives.get(address, []):
            if site.callback:
                # patched at boot by its callback, as the contract says: the registers it sets are the model's
                snap = self.replayed.snapshots[self.step]
                for index, term in enumerate(snap.x):
                    if str(term).startswith(f"{site.callback}."):
                        self.uc.reg_write(X_IDS[index], self.value(term))
                self.uc.reg_write(uc_const.UC_ARM64_REG_PC, address + site.orig_len)
                return
            if repl is None or site.repl_len == 0:  # patched with nothing: skipped
                self.uc.reg_write(uc_const.UC_ARM64_REG_PC, address + site.orig_len)
                return
            if repl == expected:
                self.uc.reg_write(uc_const.UC_ARM64_REG_PC, expected)
                return
        lifted = self.image.code(address) is not None
        if address in self.linked.stubs or not lifted or expected == self.uc.reg_read(uc_const.UC_ARM64_REG_X30):
            self._summarised(expected)
            return
        step = self.replayed.trace[self.step]
        raise _Refused(f"Unicorn went to {address:#x} ({self.image.function_at(address) or '?'}), the prover to "
                       f"{step['file']}:{step['line']} `{step['insn']}`")

    def _summarised(self, expected: int) -> None:
        """A call the prover summarised by its contract: the state after it comes from the model."""
        snaps = self.replayed.snapshots
        after, before = snaps[self.step], snaps[self.step - 1] if self.step else snaps[0]
        self.set_registers(after)
        changed = {cls: epoch for cls, epoch in after.epochs.items() if before.epochs.get(cls) != epoch}
        if changed and self.replayed.classify is not None:
            self.memory_words(changed, self.replayed.classify)
        for (region, offset), cell in after.cells.items():  # the bytes the contract wrote
            old = before.cells.get((region, offset))
            if old is not None and old[1] == cell[1] and old[0].eq(cell[0]):
                continue
            byte = (self.value(cell[0]) >> (8 * cell[1])) & 0xFF
            self.write(address_of(region.bases, offset, self.model), bytes([byte]))
        self.uc.reg_write(uc_const.UC_ARM64_REG_PC, expected)

    def _final(self, snap: Snapshot, step: dict[str, object]) -> None:
        differences = []
        for index, term in enumerate(snap.x):
            got, want = self.uc.reg_read(X_IDS[index]), self.value(term)
            if got != want:
                differences.append(f"x{index}: Unicorn {got:#x}, the prover {want:#x}")
        for name, reg_id, term in (("sp", uc_const.UC_ARM64_REG_SP, snap.sp_el1),
                                   ("sp_el0", uc_const.UC_ARM64_REG_SP_EL0, snap.sp_el0)):
            got, want = self.uc.reg_read(reg_id), self.value(term)
            if got != want:
                differences.append(f"{name}: Unicorn {got:#x}, the prover {want:#x}")
        nzcv = self.uc.reg_read(uc_const.UC_ARM64_REG_PSTATE) >> 28
        if nzcv != self.value(snap.nzcv):
            differences.append(f"NZCV: Unicorn {nzcv:#x}, the prover {self.value(snap.nzcv):#x}")
        for encoding, term in sorted(snap.sysregs.items()):
            if encoding in self.sysregs and self.sysregs[encoding] != self.value(term):
                differences.append(f"{sysregs.name_of(encoding)}: Unicorn {self.sysregs[encoding]:#x}, the "
                                   f"prover {self.value(term):#x}")
        where = f"{step['file']}:{step['line']} `{step['insn']}`"
        if differences:
            raise _Refused(f"at {where}: " + "; ".join(differences[:4]))
        self.result = Confirmation(True, f"{self.step + 1} steps to {where} with the same path, DAIF and MDSCR_EL1 "
                                         "at each, and the same registers there", self.step + 1)
        self.uc.emu_stop()

    def on_unmapped(self, _uc: unicorn.Uc, _access: int, address: int, size: int, _value: int, _user: object) -> bool:
        self.map(address, size)
        return True

    # ------------------------------------------------------------------------------------ run

    def run(self) -> Confirmation:
        addresses = self.replayed.addresses
        if not addresses or not self.replayed.snapshots:
            return Confirmation(False, "the replay has no steps", 0)
        self.initial_memory()
        for register, value in VECTOR_UNIT:
            self.uc.cpr_write(*_cp_fields(register), value)
        self.uc.cpr_write(*_cp_fields("zcr_el1"), self.value(sve_length_field()))
        self.uc.reg_write(uc_const.UC_ARM64_REG_PSTATE, 0x5)  # EL1h (written last: Unicorn then sees the above)
        self.set_registers(self.replayed.snapshots[0])
        self.uc.hook_add(unicorn.UC_HOOK_CODE, self.on_code)
        self.uc.hook_add(unicorn.UC_HOOK_MEM_UNMAPPED, self.on_unmapped)
        try:
            self.uc.emu_start(addresses[0], 0, count=4 * len(addresses) + 64)
        except unicorn.UcError as error:
            if self.result is None:
                pc = self.uc.reg_read(uc_const.UC_ARM64_REG_PC)
                step = self.replayed.trace[min(self.step, len(addresses) - 1)]
                return Confirmation(False, f"Unicorn stopped at {pc:#x} ({error}) where the prover ran "
                                           f"{step['file']}:{step['line']} `{step['insn']}`", self.step)
        if self.result is None:
            return Confirmation(False, f"Unicorn ran out of steps after {self.step} of {len(addresses)}", self.step)
        return self.result


def confirm(image: Image, linked: Linked, replayed: Replayed, model: z3.ModelRef) -> Confirmation:
    return Run(image, linked, replayed, model).run()
