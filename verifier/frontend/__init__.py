"""The Lark front end: GNU as source (kernel style and gcc output) to the IR."""
