// SPDX-License-Identifier: GPL-2.0-only
//
// The bundled subject with rule R4 of the proposed 2020 policy broken in one place: an EL1 interrupt is handled with I unmasked as well as D.
// asm/entry-ok.s is the conforming subject for every rule.

	.set	BREAK_R4, 1
	.include "../entry-ok.s"
