"""Glue between the store and the map statistics: load a scorer's scores, compute the map."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from auditor.mapstats import REGION_CODES, MapResult, sample_stats, split_regions

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


def _clean(x: float) -> float | None:
    return None if np.isnan(x) else float(x)


def ensure_map(store: Store, scorer_id: int, *, force: bool = False) -> dict[str, Any]:
    """Compute and store the map of a scorer unless its stored one is current.

    Returns the stored thresholds. The map is recomputed whenever the scorer's scores
    (or the samples) change, detected by `Store.scores_fingerprint`.
    """
    fingerprint = store.scores_fingerprint(scorer_id)
    run = store.map_run(scorer_id)
    if run and run["fingerprint"] == fingerprint and not force:
        return dict(run["thresholds"])
    result = compute_map(store, scorer_id)
    st = result.stats
    names = [r.value for r in REGION_CODES]
    rows = [
        (
            int(st.sample_id[i]),
            int(st.k[i]),
            _clean(st.mean[i]),
            _clean(st.var[i]),
            _clean(st.margin[i]),
            None,
            None,
            names[result.regions[i]] if result.regions[i] >= 0 else None,
        )
        for i in range(st.sample_id.size)
    ]
    thresholds = {**result.thresholds.as_dict(), "excluded": result.excluded}
    store.save_map(scorer_id, rows, thresholds=thresholds, fingerprint=fingerprint)
    return thresholds
