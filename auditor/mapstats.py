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
    """score(chosen) - score(rejected) when a sample has exactly one of each, both scored;
    NaN otherwise."""

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


ROLE_CODES = {"none": 0, "chosen": 1, "rejected": 2}
"""Integer codes `sample_stats` accepts in place of role names (faster on millions of rows)."""


def sample_stats(
    sample_ids: npt.ArrayLike,
    roles: npt.ArrayLike,
    values: npt.ArrayLike,
) -> SampleStats:
    """Statistics per sample from per-response columns sorted by sample id.

    ``values`` holds NaN where a response has no usable score; ``roles`` holds role names
    or their `ROLE_CODES`.
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
    width = int(k[0]) if k.min() == k.max() else 0

    def per_sample(x: npt.NDArray[Any]) -> npt.NDArray[Any]:
        # every sample the same size (the usual case): a reshape beats reduceat
        return x.reshape(-1, width).sum(axis=1) if width else np.add.reduceat(x, starts)

    ok = ~np.isnan(vals)
    all_ok = bool(ok.all())
    filled = vals if all_ok else np.where(ok, vals, 0.0)
    scored = np.full(uniq.size, width, dtype=np.int64) if all_ok and width else per_sample(ok)
    total = per_sample(filled)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(scored > 0, total / np.maximum(scored, 1), np.nan)
        if width:
            dev = vals.reshape(-1, width) - mean[:, None]
            dev = dev.ravel() if all_ok else np.where(ok, dev.ravel(), 0.0)
        else:
            dev = np.where(ok, vals - np.repeat(mean, k), 0.0)
        var = np.where(scored > 0, per_sample(dev * dev) / np.maximum(scored, 1), np.nan)
    if role.dtype.kind in "iu":
        is_chosen, is_rejected = role == ROLE_CODES["chosen"], role == ROLE_CODES["rejected"]
    else:  # names: comparing an object array costs a Python call per row, so once each
        is_chosen, is_rejected = role == "chosen", role == "rejected"
    margin = np.full(uniq.size, np.nan)
    if is_chosen.any():
        # a labelled pair: exactly one chosen and one rejected response, both scored
        both = (per_sample(is_chosen) == 1) & (per_sample(is_rejected) == 1)
        both &= (per_sample(is_chosen & ok) == 1) & (per_sample(is_rejected & ok) == 1)
        diff = per_sample(np.where(is_chosen, filled, 0.0) - np.where(is_rejected, filled, 0.0))
        margin[both] = diff[both]
    return SampleStats(uniq, k, scored.astype(np.int64), mean, var, margin)


def _top(values: FloatArray, sample_id: IntArray, count: int) -> npt.NDArray[np.bool_]:
    """The ``count`` largest values; equal values at the cut go to the lowest sample ids.

    The same rows as the first ``count`` of a sort by (value descending, sample id), found
    by a linear-time partition instead of a full sort.
    """
    n = values.size
    chosen = np.zeros(n, dtype=bool)
    if count <= 0:
        return chosen
    if count >= n:
        chosen[:] = True
        return chosen
    cut = np.partition(values, n - count)[n - count]
    above = values > cut
    chosen |= above
    ties = np.flatnonzero(values == cut)
    need = count - int(above.sum())
    chosen[ties[np.argsort(sample_id[ties], kind="stable")[:need]]] = True
    return chosen


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
    n_hv = round(n * high_var_fraction)
    hv = _top(var, sid, n_hv)
    regions[idx[hv]] = 2
    # the variance cut: the smallest variance that made it into HighVar
    v_cut = float(var[hv].min()) if n_hv else float("inf")
    rest_pos = np.flatnonzero(~hv)
    if rest_pos.size:
        high = _top(mean[rest_pos], sid[rest_pos], rest_pos.size // 2)
        regions[idx[rest_pos[high]]] = 0
        regions[idx[rest_pos[~high]]] = 1
        m_cut = float(np.median(mean[rest_pos]))
    else:
        m_cut = float("nan")
    return MapResult(stats, regions, Thresholds(v_cut, m_cut, high_var_fraction), excluded)


# -- agreement between scores and annotated ratings (METHOD.md §5) --------------------


@dataclass(slots=True)
class RatingAgreement:
    """Per-sample agreement between a scorer's scores and the annotated ratings."""

    tau: FloatArray
    """Kendall's tau-b (ties handled); NaN when a vector is constant or incomplete."""
    cosine: FloatArray
    """The paper's cosine similarity of the two vectors; NaN when incomplete or all zero."""


def rating_agreement(
    sample_ids: npt.ArrayLike,
    values: npt.ArrayLike,
    ratings: npt.ArrayLike,
) -> RatingAgreement:
    """Kendall's tau-b and the cosine per sample, from per-response columns.

    Computed only for samples with two or more responses whose every score and rating is
    present; others get NaN. Vectorised: samples are grouped by their number of responses
    K and each group is one (n, K) matrix.
    """
    sid = np.asarray(sample_ids, dtype=np.int64)
    vals = np.asarray(values, dtype=np.float64)
    rats = np.asarray(ratings, dtype=np.float64)
    if sid.size == 0:
        return RatingAgreement(np.zeros(0), np.zeros(0))
    if np.any(sid[1:] < sid[:-1]):
        order = np.argsort(sid, kind="stable")
        sid, vals, rats = sid[order], vals[order], rats[order]
    starts = np.flatnonzero(np.r_[True, sid[1:] != sid[:-1]])
    k = np.diff(np.r_[starts, sid.size])
    usable = ~(np.isnan(vals) | np.isnan(rats))
    complete = np.add.reduceat(usable.astype(np.int64), starts) == k
    tau = np.full(starts.size, np.nan)
    cosine = np.full(starts.size, np.nan)
    uniform = bool(k.min() == k.max())
    for kk in np.unique(k[complete & (k >= 2)]).tolist():
        rows = np.flatnonzero(complete & (k == kk))
        if uniform:  # one shape for all: a reshape, no gather
            s, r = vals.reshape(-1, kk)[rows], rats.reshape(-1, kk)[rows]
        else:
            cols = starts[rows][:, None] + np.arange(kk)[None, :]
            s, r = vals[cols], rats[cols]
        num = np.zeros(rows.size)
        ties_s = np.zeros(rows.size)
        ties_r = np.zeros(rows.size)
        # one column pair at a time: K(K-1)/2 passes over contiguous columns, no (n, P) copies
        for i, j in zip(*np.triu_indices(kk, 1), strict=True):
            ds = np.sign(s[:, i] - s[:, j])
            dr = np.sign(r[:, i] - r[:, j])
            num += ds * dr
            ties_s += ds == 0
            ties_r += dr == 0
        n_pairs = kk * (kk - 1) // 2
        # tau-b = (concordant - discordant) / sqrt((pairs - ties in s) * (pairs - ties in r))
        denom = np.sqrt((n_pairs - ties_s) * (n_pairs - ties_r))
        norms = np.sqrt(np.einsum("ij,ij->i", s, s) * np.einsum("ij,ij->i", r, r))
        dot = np.einsum("ij,ij->i", s, r)
        with np.errstate(invalid="ignore", divide="ignore"):
            tau[rows] = np.where(denom > 0, num / np.where(denom > 0, denom, 1.0), np.nan)
            cosine[rows] = np.where(norms > 0, dot / np.where(norms > 0, norms, 1.0), np.nan)
    return RatingAgreement(tau, cosine)


# -- the split within groups (one group per dataset) -----------------------------------


@dataclass(slots=True)
class GroupedMap:
    """Regions split within each group (a dataset): one `MapResult` per group, merged."""

    result: MapResult
    """All samples; ``thresholds`` are the single group's, or NaN when there are several."""
    groups: dict[str, MapResult]
    """Each group's own split and thresholds, by group name."""


def split_regions_by_group(
    stats: SampleStats,
    group: npt.ArrayLike,
    *,
    high_var_fraction: float = 1 / 3,
    fixed: tuple[float, float] | None = None,
    labels: dict[Any, str] | None = None,
) -> GroupedMap:
    """The paper's split applied within each group, so scales of different datasets never mix.

    ``group`` holds a label per sample (names, or codes named by ``labels``).
    """
    values, inverse = np.unique(np.asarray(group), return_inverse=True)
    regions = np.full(stats.sample_id.size, -1, dtype=np.int64)
    excluded = {"single_response": 0, "missing_scores": 0}
    groups: dict[str, MapResult] = {}
    order = np.argsort(inverse, kind="stable")
    bounds = np.searchsorted(inverse[order], np.arange(values.size + 1))
    named = [(labels or {}).get(v.item() if hasattr(v, "item") else v, str(v)) for v in values]
    for g in sorted(range(values.size), key=lambda i: named[i]):
        name = named[g]
        rows = order[bounds[g] : bounds[g + 1]]
        sub = SampleStats(
            stats.sample_id[rows],
            stats.k[rows],
            stats.scored[rows],
            stats.mean[rows],
            stats.var[rows],
            stats.margin[rows],
        )
        res = split_regions(sub, high_var_fraction=high_var_fraction, fixed=fixed)
        regions[rows] = res.regions
        for key, n in res.excluded.items():
            excluded[key] = excluded.get(key, 0) + n
        groups[name] = res
    if len(groups) == 1:
        thresholds = next(iter(groups.values())).thresholds
    else:
        method = "fixed" if fixed is not None else "paper"
        v, m = fixed if fixed is not None else (float("nan"), float("nan"))
        thresholds = Thresholds(v, m, high_var_fraction, method)
    return GroupedMap(MapResult(stats, regions, thresholds, excluded), groups)
