"""The Alignment Data Map (METHOD.md §3–§4): per-sample statistics and the paper's regions.

Everything here is vectorised with numpy over all samples at once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from auditor.model import Region

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

REGION_CODES = (Region.HIGH_AVG, Region.LOW_AVG, Region.HIGH_VAR)
"""``regions`` arrays hold an index into this tuple, or -1 for 'no region'."""


@dataclass(slots=True)
class SampleStats:
    """Per-sample statistics for one scorer, one entry per sample, sorted by sample id."""

    sample_id: IntArray
    k: IntArray
    """Responses in the sample."""
    scored: IntArray
    """Responses with a usable score."""
    mean: FloatArray
    var: FloatArray
    """Population variance (ddof = 0)."""
    margin: FloatArray
    """score(chosen) - score(rejected) for labelled pairs, NaN otherwise."""

    @property
    def complete(self) -> npt.NDArray[np.bool_]:
        """Samples whose every response is scored and that have at least two responses."""
        return (self.scored == self.k) & (self.k >= 2)


@dataclass(slots=True)
class Thresholds:
    """How the regions were cut; stored and printed with every result."""

    variance: float
    mean: float
    high_var_fraction: float = 1 / 3
    method: str = "paper"
    """``paper`` (fractions of the sorted samples) or ``fixed`` (thresholds given)."""

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "variance": self.variance,
            "mean": self.mean,
            "high_var_fraction": self.high_var_fraction,
            "method": self.method,
        }


@dataclass(slots=True)
class MapResult:
    """Statistics, regions and the thresholds behind them."""

    stats: SampleStats
    regions: IntArray
    thresholds: Thresholds
    excluded: dict[str, int] = field(default_factory=dict)
    """Samples left off the map and why (``single_response``, ``missing_scores``)."""

    def region_of(self, i: int) -> Region | None:
        """The region of the i-th sample, or None when it is off the map."""
        code = int(self.regions[i])
        return REGION_CODES[code] if code >= 0 else None

    def counts(self) -> dict[str, int]:
        """Samples per region."""
        return {r.value: int(np.sum(self.regions == i)) for i, r in enumerate(REGION_CODES)}


def sample_stats(
    sample_ids: npt.ArrayLike,
    roles: npt.ArrayLike,
    values: npt.ArrayLike,
) -> SampleStats:
    """Statistics per sample from per-response columns sorted by sample id.

    ``values`` holds NaN where a response has no usable score.
    """
    sid = np.asarray(sample_ids, dtype=np.int64)
    vals = np.asarray(values, dtype=np.float64)
    role = np.asarray(roles)
    if sid.size == 0:
        empty_i = np.zeros(0, dtype=np.int64)
        empty_f = np.zeros(0, dtype=np.float64)
        return SampleStats(empty_i, empty_i, empty_i, empty_f, empty_f, empty_f)
    if np.any(sid[1:] < sid[:-1]):
        order = np.argsort(sid, kind="stable")
        sid, vals, role = sid[order], vals[order], role[order]
    starts = np.flatnonzero(np.r_[True, sid[1:] != sid[:-1]])
    uniq = sid[starts]
    k = np.diff(np.r_[starts, sid.size]).astype(np.int64)
    ok = ~np.isnan(vals)
    filled = np.where(ok, vals, 0.0)
    scored = np.add.reduceat(ok.astype(np.int64), starts)
    total = np.add.reduceat(filled, starts)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(scored > 0, total / np.maximum(scored, 1), np.nan)
        dev = np.where(ok, vals - np.repeat(mean, k), 0.0)
        var = np.where(
            scored > 0, np.add.reduceat(dev * dev, starts) / np.maximum(scored, 1), np.nan
        )
    chosen = np.add.reduceat(np.where(role == "chosen", filled, 0.0), starts)
    rejected = np.add.reduceat(np.where(role == "rejected", filled, 0.0), starts)
    n_chosen = np.add.reduceat((role == "chosen") & ok, starts)
    n_rejected = np.add.reduceat((role == "rejected") & ok, starts)
    margin = np.where((n_chosen == 1) & (n_rejected == 1), chosen - rejected, np.nan)
    return SampleStats(uniq, k, scored.astype(np.int64), mean, var, margin)


def split_regions(
    stats: SampleStats,
    *,
    high_var_fraction: float = 1 / 3,
    fixed: tuple[float, float] | None = None,
) -> MapResult:
    """The paper's split (METHOD.md §4), with ties broken by sample id.

    1. Sort by variance (descending; equal variances by ascending sample id); the top
       ``high_var_fraction`` is HighVar.
    2. The rest is split at the median of its means: above is HighAvg, the rest LowAvg
       (equal means by sample id), so both halves hold as near half as the count allows.
    ``fixed=(variance, mean)`` uses given thresholds instead: variance > v is HighVar,
    else mean > m is HighAvg.
    """
    if not 0.0 <= high_var_fraction < 1.0:
        raise ValueError("high_var_fraction must be in [0, 1)")
    n_all = stats.sample_id.size
    regions = np.full(n_all, -1, dtype=np.int64)
    complete = stats.complete
    excluded = {
        "single_response": int(np.sum(stats.k < 2)),
        "missing_scores": int(np.sum((stats.k >= 2) & (stats.scored < stats.k))),
    }
    idx = np.flatnonzero(complete)
    var, mean, sid = stats.var[idx], stats.mean[idx], stats.sample_id[idx]
    if fixed is not None:
        v_cut, m_cut = fixed
        hv = var > v_cut
        regions[idx[hv]] = 2
        regions[idx[~hv & (mean > m_cut)]] = 0
        regions[idx[~hv & ~(mean > m_cut)]] = 1
        return MapResult(
            stats, regions, Thresholds(v_cut, m_cut, high_var_fraction, "fixed"), excluded
        )
    n = idx.size
    if n == 0:
        return MapResult(
            stats, regions, Thresholds(float("nan"), float("nan"), high_var_fraction), excluded
        )
    by_var = np.lexsort((sid, -var))
    n_hv = round(n * high_var_fraction)
    hv_pos, rest_pos = by_var[:n_hv], by_var[n_hv:]
    regions[idx[hv_pos]] = 2
    # the variance cut: the smallest variance that made it into HighVar
    v_cut = float(var[hv_pos].min()) if n_hv else float("inf")
    if rest_pos.size:
        by_mean = rest_pos[np.lexsort((sid[rest_pos], -mean[rest_pos]))]
        n_high = rest_pos.size // 2
        regions[idx[by_mean[:n_high]]] = 0
        regions[idx[by_mean[n_high:]]] = 1
        m_cut = float(np.median(mean[rest_pos]))
    else:
        m_cut = float("nan")
    return MapResult(stats, regions, Thresholds(v_cut, m_cut, high_var_fraction), excluded)
