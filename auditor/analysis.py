"""Glue between the store and the map statistics: load a scorer's scores, compute the map."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from auditor.mapstats import (
    REGION_CODES,
    GroupedMap,
    MapResult,
    RatingAgreement,
    rating_agreement,
    sample_stats,
    split_regions_by_group,
)

if TYPE_CHECKING:
    from store import Store

MAP_VERSION = 2
"""Bumped when the stored statistics change meaning or gain a column, to force a recompute."""


@dataclass(frozen=True, slots=True)
class MapSettings:
    """How the regions are cut.

    ``by_dataset`` (the default) applies the paper's split within each dataset, so a
    database holding a 1–5 and a 1–10 rated set never ranks one scale against the other;
    ``False`` pools every sample into one split, as the paper does for one training set.
    """

    by_dataset: bool = True
    high_var_fraction: float = 1 / 3
    fixed: tuple[float, float] | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form, stored with the map."""
        return {
            "by_dataset": self.by_dataset,
            "high_var_fraction": self.high_var_fraction,
            "fixed": list(self.fixed) if self.fixed is not None else None,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> MapSettings:
        """Inverse of `as_dict`; the defaults for a missing or old entry."""
        if not d:
            return cls()
        fixed = d.get("fixed")
        return cls(
            bool(d.get("by_dataset", True)),
            float(d.get("high_var_fraction", 1 / 3)),
            (float(fixed[0]), float(fixed[1])) if fixed else None,
        )


@dataclass(slots=True)
class ScorerMap:
    """A scorer's full map: statistics, regions (per dataset), rating agreement."""

    grouped: GroupedMap
    agreement: RatingAgreement
    dataset: np.ndarray
    """The dataset name of each sample (aligned with ``grouped.result.stats``)."""
    settings: MapSettings = field(default_factory=MapSettings)

    @property
    def result(self) -> MapResult:
        """Every sample's statistics and region."""
        return self.grouped.result


def compute_scorer_map(
    store: Store, scorer_id: int, settings: MapSettings | None = None
) -> ScorerMap:
    """Statistics, regions and rating agreement of every sample, from this scorer's ok scores."""
    settings = settings or MapSettings()
    rows = store.map_columns(scorer_id)
    # one float matrix straight from the row tuples (None becomes NaN); ids stay exact
    table = np.array(rows, dtype=np.float64) if rows else np.zeros((0, 4))
    if np.any(table[1:, 0] < table[:-1, 0]):  # sort once here, not in each statistic
        table = table[np.argsort(table[:, 0], kind="stable")]
    sid = table[:, 0].astype(np.int64)
    vals, rats = table[:, 2], table[:, 3]
    stats = sample_stats(sid, table[:, 1].astype(np.int64), vals)
    agreement = rating_agreement(sid, vals, rats)
    pairs, names = store.sample_datasets()
    by_sample = np.array(pairs, dtype=np.int64) if pairs else np.zeros((0, 2), np.int64)
    by_sample = by_sample[np.argsort(by_sample[:, 0])]
    code = by_sample[np.searchsorted(by_sample[:, 0], stats.sample_id), 1]
    ids = np.array(sorted(names), dtype=np.int64)
    labels = np.array([names[i] for i in ids.tolist()], dtype=object)
    dataset = labels[np.searchsorted(ids, code)] if ids.size else np.zeros(0, dtype=object)
    group = code if settings.by_dataset else np.zeros(stats.sample_id.size, dtype=np.int64)
    grouped = split_regions_by_group(
        stats,
        group,
        high_var_fraction=settings.high_var_fraction,
        fixed=settings.fixed,
        labels=names if settings.by_dataset else {0: "all"},
    )
    return ScorerMap(grouped, agreement, dataset, settings)


def compute_map(
    store: Store,
    scorer_id: int,
    *,
    high_var_fraction: float = 1 / 3,
    fixed: tuple[float, float] | None = None,
    by_dataset: bool = True,
) -> MapResult:
    """Statistics and regions for every sample, from this scorer's ok scores."""
    settings = MapSettings(by_dataset, high_var_fraction, fixed)
    return compute_scorer_map(store, scorer_id, settings).result


def _num(x: float) -> float | None:
    """A JSON-safe number: NaN (no cut) and infinity (nothing cut off) become None."""
    return float(x) if np.isfinite(x) else None


def thresholds_record(smap: ScorerMap) -> dict[str, Any]:
    """What is stored and printed with a map: the cuts overall and per dataset."""
    res = smap.result
    t = res.thresholds
    per_group = {
        name: {
            "variance": _num(g.thresholds.variance),
            "mean": _num(g.thresholds.mean),
            "samples": int(np.sum(g.regions >= 0)),
            "regions": g.counts(),
            "excluded": g.excluded,
        }
        for name, g in smap.grouped.groups.items()
    }
    return {
        "variance": _num(t.variance),
        "mean": _num(t.mean),
        "high_var_fraction": t.high_var_fraction,
        "method": t.method,
        "split": "dataset" if smap.settings.by_dataset else "pooled",
        "datasets": per_group if smap.settings.by_dataset else {},
        "excluded": res.excluded,
        "settings": smap.settings.as_dict(),
        "version": MAP_VERSION,
    }


def ensure_map(
    store: Store,
    scorer_id: int,
    *,
    force: bool = False,
    settings: MapSettings | None = None,
) -> dict[str, Any]:
    """Compute and store the map of a scorer unless its stored one is current.

    Returns the stored thresholds. The map is recomputed whenever the scorer's scores
    (or the samples) change, detected by `Store.scores_fingerprint`, or when ``settings``
    differ from the stored ones; ``settings=None`` keeps whatever split is stored.
    With several datasets split apart, the top-level ``variance`` and ``mean`` are None
    and each dataset's cuts are under ``datasets``.
    """
    fingerprint = store.scores_fingerprint(scorer_id)
    run = store.map_run(scorer_id)
    stored = dict(run["thresholds"]) if run else {}
    wanted = settings or MapSettings.from_dict(stored.get("settings"))
    current = (
        run is not None
        and run["fingerprint"] == fingerprint
        and stored.get("version") == MAP_VERSION
        and MapSettings.from_dict(stored.get("settings")) == wanted
    )
    if current and not force:
        return stored
    smap = compute_scorer_map(store, scorer_id, wanted)
    st = smap.result.stats
    names = np.array([r.value for r in REGION_CODES] + [None], dtype=object)
    region = names[smap.result.regions]  # -1 picks the trailing None
    rows = zip(
        st.sample_id.tolist(),
        st.k.tolist(),
        _column(st.mean),
        _column(st.var),
        _column(st.margin),
        _column(smap.agreement.tau),
        _column(smap.agreement.cosine),
        region.tolist(),
        strict=True,
    )
    thresholds = thresholds_record(smap)
    # past this many rows, rebuilding the table's indexes once beats updating them per row
    save = store.save_map_bulk if st.sample_id.size > 50_000 else store.save_map
    save(scorer_id, rows, thresholds=thresholds, fingerprint=fingerprint)
    return thresholds


def _column(a: np.ndarray) -> list[float | None]:
    """A float column for SQLite: NaN becomes NULL."""
    obj = a.astype(object)
    obj[np.isnan(a)] = None
    return list(obj)
