// SPDX-License-Identifier: GPL-2.0-only
//
// The bundled subject that keeps every obligation: kernel_exit masks all of D, A, I, F before it
// writes ELR_EL1 and SPSR_EL1, and re-arms MDSCR_EL1.SS for a task being single-stepped.

	.macro	kernel_exit, el
	disable_daif
	.if	\el == 0
	enable_step_tsk x19, x20		// x19: the thread flags ret_to_user read
	ldr	x23, [sp, #S_SP]
	msr	sp_el0, x23
	.endif
	ldp	x21, x22, [sp, #S_PC]		// the return address and the saved PSTATE
	msr	elr_el1, x21
	msr	spsr_el1, x22
	restore_regs_and_eret
	.endm

	.include "entry-common.inc"
