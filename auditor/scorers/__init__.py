"""Scorers: each gives every response an alignment score (METHOD.md §2)."""
