"""The symbolic engine: machine state, instruction semantics, path exploration, obligations."""
