"""The tool's entry: isolation from the stack, the parser assembled from each command, exit
policy.
"""
