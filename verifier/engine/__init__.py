"""The symbolic explorer (worklist, merging, solver queries, memory context), the linked image and guided replay.
It knows no kernel and no property: properties are observers it runs.
"""
