"""The Lambda handlers, one per workflow step: each reads its input and calls one function."""
