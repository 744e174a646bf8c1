"""Confirmation of a counterexample on an engine that shares nothing with the prover: Unicorn runs the
assembler's own object bytes, linked at the addresses the proof used, from the initial state the model
gives, and must take the same path to the failing instruction with the same DAIF and MDSCR_EL1 on the way
and the same registers there. `layout` places the regions' bases, `objects` links the objects, `machine`
runs them."""
