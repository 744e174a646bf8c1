"""Proof runs: configuration, one vector slot's proof, the process pool, a whole run and the result cache."""
