"""The stored map: per-sample rows, thresholds per dataset, recomputed when scores change."""

from __future__ import annotations

import math

import pytest

from auditor.analysis import MapSettings, compute_map, ensure_map
from auditor.ingest import ingest_file
from auditor.scorers.annotations import score_annotations
from store import Store
from tests.conftest import shared_file
from tests.mapdata import add_dataset, multi, pair, score


def test_alpacaeval_annotations_map_holds_thirds(store: Store) -> None:
    ingest_file(store, shared_file("alpacaeval-multi/alpacaeval_8models_gpt4turbo_judged.jsonl.gz"))
    report = score_annotations(store)
    sc = store.find_scorer(report.scorer)
    thresholds = ensure_map(store, sc.id)
    counts = store.region_counts(sc.id)
    n = sum(v for k, v in counts.items() if k is not None)
    assert n == 805
    for region in ("HighAvg", "LowAvg", "HighVar"):
        assert abs(counts[region] - n / 3) <= 1, counts
    assert thresholds["variance"] is not None and thresholds["mean"] is not None
    rows = store.map_rows(sc.id)
    # with the annotations scorer the scores are the ratings: perfect agreement
    assert all(r[5] == pytest.approx(1.0) for r in rows if r[5] is not None)
    assert sum(r[5] is not None for r in rows) > 700


def test_ensure_map_fills_tau_and_cosine_and_recomputes_on_new_scores(store: Store) -> None:
    ids = add_dataset(store, "d", [multi(1, 2, 3), multi(3, 2, 1), multi(1, 1, 2), pair(2, 1)])
    values = {(ids[0], 0): 0.1, (ids[0], 1): 0.2, (ids[0], 2): 0.3}
    values |= {(ids[1], 0): 0.1, (ids[1], 1): 0.2, (ids[1], 2): 0.3}
    values |= {(ids[2], 0): 0.5, (ids[2], 1): 0.4}  # third response not scored yet
    values |= {(ids[3], 0): 0.2, (ids[3], 1): 0.9}
    sid = score(store, "judge", values)
    first = ensure_map(store, sid)
    assert first["excluded"] == {"single_response": 0, "missing_scores": 1}
    rows = {r[0]: r for r in store.map_rows(sid)}
    assert rows[ids[0]][5] == pytest.approx(1.0) and rows[ids[1]][5] == pytest.approx(-1.0)
    assert rows[ids[0]][6] == pytest.approx(
        (0.1 + 0.4 + 0.9) / math.sqrt((0.01 + 0.04 + 0.09) * 14)
    )
    assert rows[ids[2]][7] is None and rows[ids[2]][5] is None  # off the map, no tau
    assert rows[ids[3]][4] == pytest.approx(-0.7)  # signed margin chosen - rejected
    assert ensure_map(store, sid) == first  # current: not recomputed
    score(store, "judge", {(ids[2], 2): 0.6})
    again = ensure_map(store, sid)
    assert again["excluded"] == {"single_response": 0, "missing_scores": 0}
    assert store.map_rows(sid)[2][7] is not None


def test_datasets_on_different_scales_are_split_apart_and_pooled_on_request(
    store: Store,
) -> None:
    small = add_dataset(store, "five", [pair(5, 1), pair(4, 3), pair(3, 3), pair(2, 1)] * 3)
    large = add_dataset(store, "ten", [pair(10, 2), pair(9, 8), pair(7, 7), pair(8, 6)] * 3)
    ratings = [(5, 1), (4, 3), (3, 3), (2, 1)] * 3 + [(10, 2), (9, 8), (7, 7), (8, 6)] * 3
    values = {}
    for sid, (hi, lo) in zip(small + large, ratings, strict=True):
        values[(sid, 0)], values[(sid, 1)] = float(hi), float(lo)
    scorer = score(store, "ratings", values)
    t = ensure_map(store, scorer)
    assert t["split"] == "dataset"
    assert t["variance"] is None and t["mean"] is None  # no single cut across scales
    assert set(t["datasets"]) == {"five", "ten"}
    for d in t["datasets"].values():
        assert d["regions"] == {"HighAvg": 4, "LowAvg": 4, "HighVar": 4}
    assert t["datasets"]["five"]["mean"] < t["datasets"]["ten"]["mean"]
    pooled = ensure_map(store, scorer, settings=MapSettings(by_dataset=False))
    assert pooled["split"] == "pooled" and pooled["mean"] is not None
    by_dataset = {r[0]: (r[7], r[8]) for r in store.map_rows(scorer)}
    # pooled, the 1-10 set crowds HighAvg: of the 16 below the variance cut, its seven
    # (means 8.5 x3, 7 x4) all beat the 1-5 set's best (3.5), which takes the last seat
    high_avg = [d for region, d in by_dataset.values() if region == "HighAvg"]
    assert high_avg.count("ten") == 7 and high_avg.count("five") == 1
    # the stored split stays until other settings are asked for
    assert ensure_map(store, scorer)["split"] == "pooled"
    assert compute_map(store, scorer, by_dataset=True).counts()["HighAvg"] == 8


def test_bulk_save_keeps_rows_and_indexes(store: Store) -> None:
    ids = add_dataset(store, "d", [multi(1, 2), multi(2, 1), multi(3, 3)])
    scorer = score(store, "s", {(s, j): float(j + i) for i, s in enumerate(ids) for j in range(2)})
    ensure_map(store, scorer)
    small = store.map_rows(scorer)
    indexes = store._query(
        "SELECT name, sql FROM sqlite_master WHERE type='index' AND tbl_name='sample_stats'"
    )
    rows = [r[:8] for r in small]
    store.save_map_bulk(scorer, rows, thresholds={"bulk": True}, fingerprint="f")
    assert store.map_rows(scorer) == small
    assert store.map_run(scorer)["thresholds"] == {"bulk": True}  # type: ignore[index]
    assert (
        store._query(
            "SELECT name, sql FROM sqlite_master WHERE type='index' AND tbl_name='sample_stats'"
        )
        == indexes
    )


def test_a_map_stored_by_an_older_version_is_recomputed(store: Store) -> None:
    ids = add_dataset(store, "d", [multi(1, 2, 3), multi(3, 2, 1)])
    scorer = score(store, "s", {(s, j): float(j) for s in ids for j in range(3)})
    fingerprint = store.scores_fingerprint(scorer)
    old_rows = [(s, 3, 1.0, 0.5, None, None, None, "LowAvg") for s in ids]
    store.save_map(scorer, old_rows, thresholds={"variance": 0.5}, fingerprint=fingerprint)
    t = ensure_map(store, scorer)
    assert t["version"] >= 2
    taus = [r[5] for r in store.map_rows(scorer)]
    assert taus == [pytest.approx(1.0), pytest.approx(-1.0)]
