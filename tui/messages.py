"""Messages that worker threads post to screens: small records, never widgets."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from textual.message import Message


@dataclass
class MapLoaded(Message):
    """The map of the current scorer is ready (or could not be made)."""

    scorer: Any
    thresholds: dict[str, Any]
    points: list[tuple[float, float, str]]
    error: str | None = None


@dataclass
class RegionsLoaded(Message):
    """The region table's counts are ready."""

    rows: list[Any]


@dataclass
class ScoringProgress(Message):
    """Another process changed the database: scores per scorer and responses in all."""

    scored: dict[int, int]
    total: int
    active: dict[int, int]
    """Scorers whose count moved since the previous poll, with their new count."""
    names: dict[int, str]


@dataclass
class QueuePage(Message):
    """A page of a queue, fetched by keyset."""

    queue: Any
    rows: list[Any]
    select: int | None = None


@dataclass
class QueueSize(Message):
    """How many samples a queue holds."""

    queue: Any
    count: int


@dataclass
class SampleLoaded(Message):
    """A sample is ready to show."""

    view: Any


@dataclass
class Undone(Message):
    """An undo or redo was written (sample None: nothing to undo, or the write failed)."""

    sample_id: int | None
    text: str
