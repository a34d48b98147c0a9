"""Generators of hostile inputs for the fault-corpus tests: built in code, never checked-in blobs."""
