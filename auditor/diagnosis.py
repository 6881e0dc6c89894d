"""Diagnosis (METHOD.md §5): ranked suspects, agreement between scorers, region composition."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from auditor.analysis import MapSettings, ensure_map
from auditor.mapstats import REGION_CODES, FloatArray

if TYPE_CHECKING:
    from store import Store

FLIPPED = "flipped_label"
DISAGREEMENT = "rating_disagreement"
LOW_INFORMATION = "low_information"
KINDS = (FLIPPED, DISAGREEMENT, LOW_INFORMATION)


@dataclass(slots=True)
class MapView:
    """The stored map of one scorer as numpy columns, optionally one dataset only."""

    sample_id: npt.NDArray[np.int64]
    k: npt.NDArray[np.int64]
    mean: FloatArray
    var: FloatArray
    margin: FloatArray
    tau: FloatArray
    cosine: FloatArray
    region: npt.NDArray[np.object_]
    """'HighAvg', 'LowAvg', 'HighVar' or None (off the map)."""
    dataset: npt.NDArray[np.object_]
    thresholds: dict[str, Any]

    def __len__(self) -> int:
        return int(self.sample_id.size)


def load_map(
    store: Store,
    scorer_id: int,
    *,
    dataset: str | None = None,
    settings: MapSettings | None = None,
) -> MapView:
    """The scorer's map (computed and stored first when stale) as columns."""
    thresholds = ensure_map(store, scorer_id, settings=settings)
    rows = store.map_rows(scorer_id, dataset)
    if not rows:
        e_i, e_f, e_o = np.zeros(0, np.int64), np.zeros(0), np.zeros(0, dtype=object)
        return MapView(e_i, e_i, e_f, e_f, e_f, e_f, e_f, e_o, e_o, thresholds)
    cols = list(zip(*rows, strict=True))

    def floats(i: int) -> FloatArray:
        return np.array(cols[i], dtype=np.float64)

    return MapView(
        np.array(cols[0], dtype=np.int64),
        np.array(cols[1], dtype=np.int64),
        floats(2),
        floats(3),
        floats(4),
        floats(5),
        floats(6),
        np.array(cols[7], dtype=object),
        np.array(cols[8], dtype=object),
        thresholds,
    )


# -- suspects ----------------------------------------------------------------------------


@dataclass(slots=True)
class Suspect:
    """One sample the diagnosis points at, with the evidence behind it."""

    sample_id: int
    kind: str
    dataset: str
    region: str | None
    margin: float | None = None
    relative_margin: float | None = None
    """The margin as a share of the dataset's score range, comparable across scales."""
    tau: float | None = None
    cosine: float | None = None
    prompt: str = ""
    responses: list[dict[str, Any]] = field(default_factory=list)
    decision: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "sample_id": self.sample_id,
            "kind": self.kind,
            "dataset": self.dataset,
            "region": self.region,
            "margin": self.margin,
            "relative_margin": self.relative_margin,
            "tau": self.tau,
            "cosine": self.cosine,
            "prompt": self.prompt,
            "responses": self.responses,
            "decision": self.decision,
        }


@dataclass(slots=True)
class Diagnosis:
    """Ranked suspects of each kind, the totals before ``top`` cut them, and the rules used."""

    suspects: dict[str, list[Suspect]]
    totals: dict[str, int]
    tiny_margin: dict[str, float]
    """Per dataset: |margin| at or under this is low-information; below minus it, flipped."""
    max_tau: float
    low_impact: dict[str, int]
    """Samples in LowAvg and HighVar (METHOD.md §5: low impact on training)."""


def _opt(x: float) -> float | None:
    return None if np.isnan(x) else float(x)


def suspect_masks(
    view: MapView,
    *,
    margin: float | None = None,
    margin_share: float = 0.05,
    max_tau: float = 0.0,
) -> tuple[dict[str, npt.NDArray[np.int64]], dict[str, float], FloatArray]:
    """Row indices of each kind of suspect, ranked; the tiny margin used per dataset.

    A pair is flipped when its margin is below minus the tiny margin, low-information
    when |margin| is at most the tiny margin; the tiny margin is ``margin`` when given,
    else ``margin_share`` of the range of the dataset's pair scores. A sample with three
    or more responses disagrees with its ratings when Kendall's tau is below ``max_tau``.
    """
    n = len(view)
    is_pair = ~np.isnan(view.margin)
    tiny = np.zeros(n)
    relative = np.full(n, np.nan)
    tiny_by_dataset: dict[str, float] = {}
    for name in sorted({str(d) for d in view.dataset[is_pair]}):
        rows = np.flatnonzero(is_pair & (view.dataset == name))
        half = np.abs(view.margin[rows]) / 2  # pair scores are mean ± |margin| / 2
        span = float(np.max(view.mean[rows] + half) - np.min(view.mean[rows] - half))
        eps = margin if margin is not None else margin_share * span
        tiny[rows] = eps
        tiny_by_dataset[name] = eps
        relative[rows] = view.margin[rows] / span if span > 0 else 0.0
    sid = view.sample_id
    flipped = np.flatnonzero(is_pair & (view.margin < -tiny))
    flipped = flipped[np.lexsort((sid[flipped], relative[flipped]))]
    low = np.flatnonzero(is_pair & (np.abs(view.margin) <= tiny))
    low = low[np.lexsort((sid[low], np.abs(relative[low])))]
    multi = (view.k >= 3) & ~np.isnan(view.tau) & (view.tau < max_tau)
    dis = np.flatnonzero(multi)
    cos = np.where(np.isnan(view.cosine[dis]), np.inf, view.cosine[dis])
    dis = dis[np.lexsort((sid[dis], cos, view.tau[dis]))]
    return {FLIPPED: flipped, DISAGREEMENT: dis, LOW_INFORMATION: low}, tiny_by_dataset, relative


def find_suspects(
    store: Store,
    scorer_id: int,
    *,
    dataset: str | None = None,
    top: int | None = 20,
    margin: float | None = None,
    margin_share: float = 0.05,
    max_tau: float = 0.0,
) -> Diagnosis:
    """Ranked suspects of a scorer's map with their evidence (scores, ratings, prompt)."""
    view = load_map(store, scorer_id, dataset=dataset)
    ranked, tiny, relative = suspect_masks(
        view, margin=margin, margin_share=margin_share, max_tau=max_tau
    )
    chosen = {kind: rows[:top] if top is not None else rows for kind, rows in ranked.items()}
    ids = sorted({int(view.sample_id[i]) for rows in chosen.values() for i in rows})
    scores = store.sample_scores(scorer_id, ids)
    prompts = store.prompts(ids)
    decisions = store.decisions()
    suspects: dict[str, list[Suspect]] = {}
    for kind, rows in chosen.items():
        out = []
        for i in rows:
            s = int(view.sample_id[i])
            state = decisions.get(s)
            out.append(
                Suspect(
                    sample_id=s,
                    kind=kind,
                    dataset=str(view.dataset[i]),
                    region=view.region[i],
                    margin=_opt(view.margin[i]),
                    relative_margin=_opt(relative[i]),
                    tau=_opt(view.tau[i]),
                    cosine=_opt(view.cosine[i]),
                    prompt=prompts.get(s, ""),
                    responses=[
                        {"idx": idx, "role": role, "model": model, "score": v, "rating": r}
                        for idx, role, model, v, r in scores.get(s, [])
                    ],
                    decision=state.action if state else None,
                )
            )
        suspects[kind] = out
    low_impact = {
        r.value: int(np.sum(view.region == r.value)) for r in REGION_CODES if r.value != "HighAvg"
    }
    return Diagnosis(
        suspects,
        {kind: int(rows.size) for kind, rows in ranked.items()},
        tiny,
        max_tau,
        low_impact,
    )


def flagged_ids(view: MapView, **rules: Any) -> npt.NDArray[np.int64]:
    """Sample ids of the flipped and disagreeing suspects (what the map calls 'flagged')."""
    ranked, _tiny, _rel = suspect_masks(view, **rules)
    rows = np.concatenate([ranked[FLIPPED], ranked[DISAGREEMENT]])
    return np.sort(view.sample_id[rows])


# -- agreement between two scorers ------------------------------------------------------


def average_ranks(x: npt.ArrayLike) -> FloatArray:
    """Ranks from 1, ties given the mean of the ranks they span."""
    a = np.asarray(x, dtype=np.float64)
    order = np.argsort(a, kind="stable")
    s = a[order]
    starts = np.flatnonzero(np.r_[True, s[1:] != s[:-1]]) if s.size else np.zeros(0, np.int64)
    ends = np.r_[starts[1:], s.size]
    avg = (starts + ends + 1) / 2.0  # mean of ranks start+1 .. end
    ranks = np.empty(a.size)
    ranks[order] = np.repeat(avg, ends - starts)
    return ranks


def spearman(a: npt.ArrayLike, b: npt.ArrayLike) -> float:
    """Spearman's rank correlation (Pearson on average ranks); NaN when undefined."""
    ra, rb = average_ranks(a), average_ranks(b)
    if ra.size < 2:
        return float("nan")
    ra, rb = ra - ra.mean(), rb - rb.mean()
    denom = float(np.sqrt(np.sum(ra * ra) * np.sum(rb * rb)))
    return float(np.sum(ra * rb) / denom) if denom > 0 else float("nan")


def pair_directions(
    sample_ids: npt.ArrayLike, a: npt.ArrayLike, b: npt.ArrayLike
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Sign of (s_i - s_j) under each scorer for every within-sample pair both scored fully."""
    sid = np.asarray(sample_ids, dtype=np.int64)
    va, vb = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if sid.size == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    starts = np.flatnonzero(np.r_[True, sid[1:] != sid[:-1]])
    k = np.diff(np.r_[starts, sid.size])
    both = ~(np.isnan(va) | np.isnan(vb))
    complete = np.add.reduceat(both.astype(np.int64), starts) == k
    da, db = [], []
    for kk in np.unique(k[complete & (k >= 2)]):
        cols = starts[complete & (k == kk)][:, None] + np.arange(kk)[None, :]
        i, j = np.triu_indices(int(kk), 1)
        da.append(np.sign(va[cols][:, i] - va[cols][:, j]).ravel())
        db.append(np.sign(vb[cols][:, i] - vb[cols][:, j]).ravel())
    if not da:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(da).astype(np.int64), np.concatenate(db).astype(np.int64)


def cohen_kappa(x: npt.ArrayLike, y: npt.ArrayLike) -> float:
    """Cohen's kappa between two label vectors; NaN when undefined."""
    xa, ya = np.asarray(x), np.asarray(y)
    if xa.size == 0:
        return float("nan")
    observed = float(np.mean(xa == ya))
    labels = np.union1d(xa, ya)
    expected = float(sum(np.mean(xa == c) * np.mean(ya == c) for c in labels))
    return (observed - expected) / (1 - expected) if expected < 1 else float("nan")


def scorer_agreement(store: Store, scorer_a: int, scorer_b: int) -> dict[str, Any]:
    """How two scorers agree: Spearman, same-order share and Cohen's kappa on pair direction."""
    sid, a, b = store.paired_scores(scorer_a, scorer_b)
    va, vb = np.array(a, dtype=np.float64), np.array(b, dtype=np.float64)
    both = ~(np.isnan(va) | np.isnan(vb))
    da, db = pair_directions(sid, va, vb)
    strict = (da != 0) & (db != 0)
    ra = load_map(store, scorer_a)
    rb = load_map(store, scorer_b)
    common, ia, ib = np.intersect1d(ra.sample_id, rb.sample_id, return_indices=True)
    on_both = (ra.region[ia] != None) & (rb.region[ib] != None)  # noqa: E711
    same_region = ra.region[ia][on_both] == rb.region[ib][on_both]
    return {
        "responses": int(np.sum(both)),
        "spearman": _opt(spearman(va[both], vb[both])),
        "pairs": int(da.size),
        "same_order": _opt(float(np.mean(da[strict] == db[strict])) if strict.any() else np.nan),
        "kappa": _opt(cohen_kappa(da, db)),
        "samples_on_both_maps": int(on_both.sum()),
        "same_region": _opt(float(np.mean(same_region)) if same_region.size else np.nan),
        "common_samples": int(common.size),
    }


# -- region composition -----------------------------------------------------------------


def composition(
    regions: Sequence[Any] | npt.NDArray[Any],
    labels: Sequence[Any] | npt.NDArray[Any],
    top: int | None = None,
) -> dict[str, dict[str, int]]:
    """Counts of each label within each region, largest first (None becomes '(none)')."""
    reg = np.asarray(regions, dtype=object)
    lab = np.array(["(none)" if x is None else str(x) for x in labels], dtype=object)
    out: dict[str, dict[str, int]] = {}
    for r in REGION_CODES:
        sel = lab[reg == r.value]
        names, counts = np.unique(sel.astype(str), return_counts=True)
        order = np.lexsort((names, -counts))[:top]
        out[r.value] = {str(names[i]): int(counts[i]) for i in order}
    return out


def region_composition(
    store: Store,
    scorer_id: int,
    dataset: str | None = None,
    top: int | None = None,
    *,
    fresh: bool = False,
) -> dict[str, dict[str, dict[str, int]]]:
    """Samples per source and responses per model within each region of the stored map.

    ``fresh=True`` skips checking that the stored map is current (the caller just did).
    """
    if not fresh:
        ensure_map(store, scorer_id)
    out: dict[str, dict[str, dict[str, int]]] = {}
    for by in ("source", "model"):
        counts: dict[str, dict[str, int]] = {r.value: {} for r in REGION_CODES}
        for region, label, n in store.region_breakdown(scorer_id, by, dataset):
            if region in counts:
                counts[region]["(none)" if label is None else str(label)] = int(n)
        out[by] = {
            r: dict(sorted(c.items(), key=lambda kv: (-kv[1], kv[0]))[:top])
            for r, c in counts.items()
        }
    return out
