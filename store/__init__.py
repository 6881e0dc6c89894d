"""The SQLite store: the only package that speaks SQL."""

from __future__ import annotations

from store.store import EncodedSample, Store, StoreError, default_db_path, encode_sample

__all__ = ["EncodedSample", "Store", "StoreError", "default_db_path", "encode_sample"]
