// SPDX-License-Identifier: GPL-2.0-only
//
// The bundled subject with rule R2 of the proposed 2020 policy broken in one place: a debug exception from EL0 reaches do_debug_exception with I masked (the seed's bug).
// asm/entry-ok.s is the conforming subject for every rule.

	.set	BREAK_R2, 1
	.include "../entry-ok.s"
