"""Measures the restore workflow on the simulator's virtual clock (issue #7)."""
