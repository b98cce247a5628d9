"""A build's artifacts as files: hashing them, their manifests, and comparing two manifests.

A bottom layer: the agent builds manifests with it, the CLI writes, verifies and compares
them, and the coordinator records comparisons with it; it knows nothing of any of them.
"""
