"""Kernel glue at the edge: Kbuild (out of tree), the kernel's version and layout, snapshots of lifted inputs."""
