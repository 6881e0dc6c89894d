"""The SQLite store: the only package that speaks SQL."""

from __future__ import annotations

from store.store import Store, StoreError, default_db_path

__all__ = ["Store", "StoreError", "default_db_path"]
