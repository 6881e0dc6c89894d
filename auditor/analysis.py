"""Glue between the store and the map statistics: load a scorer's scores, compute the map."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from auditor.mapstats import MapResult, sample_stats, split_regions

if TYPE_CHECKING:
    from store import Store


def compute_map(
    store: Store,
    scorer_id: int,
    *,
    high_var_fraction: float = 1 / 3,
    fixed: tuple[float, float] | None = None,
) -> MapResult:
    """Statistics and regions for every sample, from this scorer's ok scores."""
    sid, _idx, role, values, _rating = store.score_table(scorer_id)
    vals = np.array([np.nan if v is None else v for v in values], dtype=np.float64)
    stats = sample_stats(np.asarray(sid, dtype=np.int64), np.asarray(role, dtype=object), vals)
    return split_regions(stats, high_var_fraction=high_var_fraction, fixed=fixed)
