"""The intermediate representation both front ends produce: programs, sections, items, instructions and operands;
alias canonicalisation; system register encodings; JSON of the IR.
"""
