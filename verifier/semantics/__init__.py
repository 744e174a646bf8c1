"""Machine state over Z3 bit-vectors and the per-mnemonic semantics table; the census of the mnemonics real
inputs use; the names of symbolic values.
"""
