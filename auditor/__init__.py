"""Alignment Auditor: map, diagnose and clean LLM preference data."""

from __future__ import annotations

__version__ = "0.1.0"
