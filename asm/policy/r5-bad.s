// SPDX-License-Identifier: GPL-2.0-only
//
// The bundled subject with rule R5 of the proposed 2020 policy broken in one place: an EL1 debug exception unmasks D before do_debug_exception.
// asm/entry-ok.s is the conforming subject for every rule.

	.set	BREAK_R5, 1
	.include "../entry-ok.s"
