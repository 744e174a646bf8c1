"""GNU as text to the IR: reader, gas macro language, assembler (sections, fragments, layout, fixups), operands,
alternatives, and the decoder of raw instruction words.
"""
