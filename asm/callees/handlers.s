// SPDX-License-Identifier: GPL-2.0-only
//
// The C handlers the bundled subjects call, as a compiler might emit them, written for entry-verify: each
// keeps its contract in proofs/contracts/bundled.toml, so that contract checking (the default) proves the
// contracts the subjects' verdicts rest on and those verdicts are closed. `entry-verify prove` with no
// FILE reads this file as the subjects' callee ring (`--callees`).

	.text

	// do_el0_sync(regs): a synchronous exception from EL0 with DAIF clear. Masks interrupts around its
	// work and restores DAIF as it found it; steps the saved pc past the instruction (regs->pc += 4),
	// which its contract allows.
	.globl	do_el0_sync
	.type	do_el0_sync, %function
do_el0_sync:
	stp	x29, x30, [sp, #-32]!
	mov	x29, sp
	str	x19, [sp, #16]
	mrs	x19, daif
	msr	daifset, #2
	ldr	x1, [x0, #256]
	add	x1, x1, #4
	str	x1, [x0, #256]
	msr	daif, x19
	ldr	x19, [sp, #16]
	ldp	x29, x30, [sp], #32
	ret
	.size	do_el0_sync, .-do_el0_sync

	// do_el1_sync(regs): a synchronous exception from EL1; it only reads the saved pc.
	.globl	do_el1_sync
	.type	do_el1_sync, %function
do_el1_sync:
	ldr	x1, [x0, #256]
	cbz	x1, 1f
	mov	x0, #0
1:	ret
	.size	do_el1_sync, .-do_el1_sync

	// do_debug_exception(regs): reads MDSCR_EL1 and writes it back unchanged, then the EL1 handler.
	.globl	do_debug_exception
	.type	do_debug_exception, %function
do_debug_exception:
	mrs	x1, mdscr_el1
	msr	mdscr_el1, x1
	b	do_el1_sync
	.size	do_debug_exception, .-do_debug_exception

	// handle_irq(regs): acknowledges the interrupt; leaves pt_regs' PSTATE and per-CPU data alone.
	.globl	handle_irq
	.type	handle_irq, %function
handle_irq:
	ldr	x1, [x0, #0]
	ret
	.size	handle_irq, .-handle_irq

	// do_notify_resume(regs, flags): the work before returning to user space, with exceptions unmasked
	// while it runs (its contract lets it unmask) and DAIF as it found it on return.
	.globl	do_notify_resume
	.type	do_notify_resume, %function
do_notify_resume:
	mrs	x2, daif
	msr	daifclr, #0xf
	nop
	msr	daif, x2
	ret
	.size	do_notify_resume, .-do_notify_resume

	// bad_mode(): an exception the entry does not expect; BUG().
	.globl	bad_mode
	.type	bad_mode, %function
bad_mode:
	brk	#0x800
	.size	bad_mode, .-bad_mode
