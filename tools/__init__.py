"""Build and check helpers for the repository (not deployed)."""
