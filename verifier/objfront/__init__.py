"""The second front end: GNU as, pyelftools and capstone turn an object into the IR; translation validation
compares it with the Lark lift.
"""
