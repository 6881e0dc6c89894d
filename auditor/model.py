"""The domain's records: samples, responses, scores and decisions, free of storage details."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Role(StrEnum):
    """The label a response carries in the source data."""

    CHOSEN = "chosen"
    REJECTED = "rejected"
    NONE = "none"


class Action(StrEnum):
    """What a reviewer decided about a sample."""

    FLIP = "flip"
    DROP = "drop"
    KEEP = "keep"
    NOTE = "note"


class Region(StrEnum):
    """The map's three regions (METHOD.md §4)."""

    HIGH_AVG = "HighAvg"
    LOW_AVG = "LowAvg"
    HIGH_VAR = "HighVar"


Conversation = list[dict[str, str]]
"""Turns as ``{"role": "user" | "assistant" | "system", "content": str}``."""


@dataclass(slots=True)
class ResponseIn:
    """One response as read from a source record."""

    text: str
    role: Role = Role.NONE
    model: str | None = None
    rating: float | None = None
    ratings: dict[str, Any] | None = None


@dataclass(slots=True)
class SampleIn:
    """One prompt (or conversation) with its responses, as read from a source record."""

    row: int
    conversation: Conversation
    responses: list[ResponseIn]
    record: str | bytes
    """The source record verbatim (a JSON line's own bytes, or the record's JSON text)."""
    source: str | None = None
    reference: str | None = None
    flags: list[str] = field(default_factory=list)
    kind: str = "pair"
    """``pair`` for two labelled responses (a tie keeps both unlabelled), ``multi`` for K."""


@dataclass(slots=True)
class ScoreIn:
    """The outcome of scoring one response with one scorer configuration."""

    response_id: int
    value: float | None
    status: str = "ok"
    rationale: str | None = None
    raw: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0
    seed: int | None = None
    error: str | None = None


def prompt_text(conversation: Conversation) -> str:
    """The text a reviewer reads as 'the prompt': the last user turn, else the last turn."""
    for turn in reversed(conversation):
        if turn.get("role") == "user":
            return turn.get("content", "")
    return conversation[-1].get("content", "") if conversation else ""
