// SPDX-License-Identifier: GPL-2.0-only
//
// The bundled subject with rule R1 of the proposed 2020 policy broken in one place: the EL0 handler proper (do_el0_sync) is called with D still masked.
// asm/entry-ok.s is the conforming subject for every rule.

	.set	BREAK_R1, 1
	.include "../entry-ok.s"
