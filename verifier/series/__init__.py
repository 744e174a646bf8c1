"""Patch series at the edge: git (scratch clones, git am), series runs and shards, verdict differences between
commits, series reports (text, markdown, JSON, SARIF, JUnit).
"""
