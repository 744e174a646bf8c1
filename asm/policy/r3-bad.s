// SPDX-License-Identifier: GPL-2.0-only
//
// The bundled subject with rule R3 of the proposed 2020 policy broken in one place: an EL1 synchronous exception runs do_el1_sync with D masked although the interrupted context had it unmasked.
// asm/entry-ok.s is the conforming subject for every rule.

	.set	BREAK_R3, 1
	.include "../entry-ok.s"
