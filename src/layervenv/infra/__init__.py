"""Mechanisms with no knowledge of layers: errors, output, interrupts, the cache, the write
lock, renames.
"""
