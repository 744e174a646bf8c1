// SPDX-License-Identifier: GPL-2.0-only
//
// The bundled subject with a classic mistake: kernel_exit writes ELR_EL1 and SPSR_EL1 while
// interrupts may still be unmasked (a handler came back with them on), and masks only afterwards.
// An interrupt taken in between overwrites both, and the eret returns to the interrupt's context.
// entry-verify must report eret-integrity VIOLATED on the EL0 return paths.

	.macro	kernel_exit, el
	ldp	x21, x22, [sp, #S_PC]
	msr	elr_el1, x21
	msr	spsr_el1, x22
	disable_daif				// too late
	.if	\el == 0
	enable_step_tsk x19, x20
	ldr	x23, [sp, #S_SP]
	msr	sp_el0, x23
	.endif
	restore_regs_and_eret
	.endm

	.include "entry-common.inc"
