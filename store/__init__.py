"""The SQLite store: the only package that speaks SQL."""

from __future__ import annotations

from store.store import (
    ONE_USER_TURN,
    EncodedSample,
    Store,
    StoreError,
    decode_conversation,
    default_db_path,
    encode_pair,
    encode_sample,
)

__all__ = [
    "ONE_USER_TURN",
    "EncodedSample",
    "Store",
    "StoreError",
    "decode_conversation",
    "default_db_path",
    "encode_pair",
    "encode_sample",
]
