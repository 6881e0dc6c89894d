"""The annotations scorer: ratings already in the data become scores, with no model call."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from auditor.model import ScoreIn

if TYPE_CHECKING:
    from store import Store


@dataclass(slots=True)
class AnnotationReport:
    """What the annotations scorer did."""

    scorer: str
    config_hash: str
    scored: int
    without_rating: int


def annotation_config(field: str = "auto") -> dict[str, Any]:
    """The scorer configuration; ``auto`` takes each format's primary rating.

    The primary rating is UltraFeedback's ``fine-grained_score`` (else the mean of its
    aspects), ``score_chosen`` / ``score_rejected`` (or ``rating_*``) in binarized sets,
    alpacaeval's ``preference``, the share of annotator votes in voted pairs, and the
    ``total_score`` reward in message records. Any other field name (``helpfulness``,
    ``overall_score``, ...) takes that rating where a response has it.
    """
    return {"kind": "annotations", "field": field}


def score_annotations(store: Store, field: str = "auto") -> AnnotationReport:
    """Store a score for every response that carries the chosen rating."""
    config = annotation_config(field)
    name = "annotations" if field == "auto" else f"annotations:{field}"
    scorer = store.scorer(name, "annotations", config)
    scores: list[ScoreIn] = []
    missing = 0
    for response_id, rating, ratings in store.rated_responses():
        value = rating
        if field != "auto":
            value = _field(ratings, field)
        if value is None:
            missing += 1
            continue
        scores.append(ScoreIn(response_id, float(value), raw=None))
    store.save_scores(scorer.id, scores)
    return AnnotationReport(scorer.name, scorer.config_hash, len(scores), missing)


def _field(ratings: str | None, field: str) -> float | None:
    if not ratings:
        return None
    value = json.loads(ratings).get(field)
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
