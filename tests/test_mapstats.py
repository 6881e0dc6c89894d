"""The map's statistics and the paper's split, checked by hand."""

from __future__ import annotations

import numpy as np
import pytest

from auditor.mapstats import (
    SampleStats,
    rating_agreement,
    sample_stats,
    split_regions,
    split_regions_by_group,
)


def stats_of(var: list[float], mean: list[float], ids: list[int] | None = None) -> SampleStats:
    """Complete two-response samples with given variance and mean."""
    n = len(var)
    sid = np.array(ids if ids is not None else range(1, n + 1), dtype=np.int64)
    two = np.full(n, 2, dtype=np.int64)
    return SampleStats(sid, two, two, np.array(mean, float), np.array(var, float), np.full(n, 0.0))


def names(result) -> list[str | None]:  # type: ignore[no-untyped-def]
    return [r.value if (r := result.region_of(i)) else None for i in range(len(result.regions))]


def test_paper_split_by_hand() -> None:
    # six samples: the two largest variances are HighVar; the rest split at the median mean
    st = stats_of(var=[0.1, 0.9, 0.2, 0.8, 0.3, 0.0], mean=[5, 1, 4, 2, 3, 6])
    res = split_regions(st)
    assert names(res) == ["HighAvg", "HighVar", "LowAvg", "HighVar", "LowAvg", "HighAvg"]
    assert res.thresholds.variance == 0.8  # the smallest variance inside HighVar
    assert res.thresholds.mean == 4.5  # the median of the remaining means 5, 4, 3, 6
    assert res.counts() == {"HighAvg": 2, "LowAvg": 2, "HighVar": 2}


def test_ties_at_both_cuts_go_by_sample_id() -> None:
    # every variance equal: HighVar takes the lowest ids; every mean equal: HighAvg too
    st = stats_of(var=[0.5] * 6, mean=[1.0] * 6, ids=[60, 10, 50, 20, 40, 30])
    res = split_regions(st)
    by_id = dict(zip(st.sample_id.tolist(), names(res), strict=True))
    assert by_id == {
        10: "HighVar",
        20: "HighVar",
        30: "HighAvg",
        40: "HighAvg",
        50: "LowAvg",
        60: "LowAvg",
    }


def test_tie_straddling_the_variance_cut() -> None:
    # ids 2 and 3 share the variance at the cut: one seat is left and id 2 takes it;
    # id 3 joins the rest, whose means 3, 4, 5, 6 split at 4.5
    st = stats_of(var=[0.9, 0.5, 0.5, 0.1, 0.1, 0.1], mean=[1, 2, 3, 4, 5, 6])
    assert names(split_regions(st)) == [
        "HighVar",
        "HighVar",
        "LowAvg",
        "LowAvg",
        "HighAvg",
        "HighAvg",
    ]


def test_odd_counts_keep_thirds_within_one() -> None:
    rng = np.random.default_rng(0)
    for n in (7, 8, 100, 301):
        counts = split_regions(stats_of(list(rng.random(n)), list(rng.random(n)))).counts()
        assert sum(counts.values()) == n
        assert max(counts.values()) - min(counts.values()) <= 1


def test_fraction_and_fixed_thresholds() -> None:
    st = stats_of(var=[0.1, 0.9, 0.2, 0.8], mean=[5, 1, 4, 2])
    half = split_regions(st, high_var_fraction=0.5)
    assert half.counts()["HighVar"] == 2
    fixed = split_regions(st, fixed=(0.5, 4.5))
    assert names(fixed) == ["HighAvg", "HighVar", "LowAvg", "HighVar"]
    assert fixed.thresholds.method == "fixed"
    with pytest.raises(ValueError):
        split_regions(st, high_var_fraction=1.0)


def test_population_variance_and_margin_for_pairs() -> None:
    rng = np.random.default_rng(1)
    n = 500
    sid = np.repeat(np.arange(n), 2)
    roles = np.tile(["chosen", "rejected"], n).astype(object)
    values = rng.normal(size=2 * n)
    st = sample_stats(sid, roles, values)
    m = values[0::2] - values[1::2]
    np.testing.assert_allclose(st.margin, m)
    np.testing.assert_allclose(st.var, (m / 2) ** 2)  # sigma^2 = (m / 2)^2 when K = 2
    np.testing.assert_allclose(st.var, values.reshape(n, 2).var(axis=1, ddof=0))


def test_input_order_does_not_change_the_result() -> None:
    rng = np.random.default_rng(2)
    sid = np.repeat(np.arange(1, 301), 4)
    values = rng.integers(1, 6, size=sid.size).astype(float)  # many ties on purpose
    roles = np.full(sid.size, "none", dtype=object)
    ratings = rng.integers(1, 6, size=sid.size).astype(float)
    base = split_regions(sample_stats(sid, roles, values))
    agree = rating_agreement(sid, values, ratings)
    order = rng.permutation(sid.size)  # samples and responses within them, all shuffled
    shuffled = split_regions(sample_stats(sid[order], roles[order], values[order]))
    np.testing.assert_array_equal(base.regions, shuffled.regions)
    np.testing.assert_array_equal(base.stats.sample_id, shuffled.stats.sample_id)
    assert base.thresholds == shuffled.thresholds
    again = rating_agreement(sid[order], values[order], ratings[order])
    np.testing.assert_allclose(agree.tau, again.tau, equal_nan=True)


def test_samples_off_the_map_are_counted_not_crashed_on() -> None:
    sid = np.array([1, 2, 2, 3, 3, 4, 4])
    roles = np.array(["none", "chosen", "rejected", "chosen", "rejected", "none", "none"])
    values = np.array([1.0, 2.0, np.nan, 3.0, 1.0, np.nan, np.nan])
    res = split_regions(sample_stats(sid, roles, values))
    assert res.excluded == {"single_response": 1, "missing_scores": 2}
    # the one sample on the map: no seat in HighVar (a third of 1 rounds to 0), and its
    # mean is the median, not above it
    assert names(res) == [None, None, "LowAvg", None]


def test_nothing_on_the_map() -> None:
    res = split_regions(sample_stats([1], ["none"], [1.0]))
    assert res.counts() == {"HighAvg": 0, "LowAvg": 0, "HighVar": 0}
    assert np.isnan(res.thresholds.variance)
    assert split_regions(sample_stats([], [], [])).excluded == {
        "single_response": 0,
        "missing_scores": 0,
    }


def test_kendall_tau_b_and_cosine_by_hand() -> None:
    sid = [1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4]
    scores = [0.9, 0.5, 0.1, 0.1, 0.5, 0.9, 1.0, 1.0, 2.0, 1.0, 2.0]
    ratings = [3.0, 2.0, 1.0, 3.0, 2.0, 1.0, 1.0, 2.0, 2.0, 5.0, np.nan]
    a = rating_agreement(sid, scores, ratings)
    assert a.tau[0] == pytest.approx(1.0)
    assert a.tau[1] == pytest.approx(-1.0)
    # sample 3: pairs (0,1) tied in scores, (1,2) tied in ratings, (0,2) concordant:
    # tau-b = 1 / sqrt((3 - 1) * (3 - 1)) = 0.5
    assert a.tau[2] == pytest.approx(0.5)
    assert np.isnan(a.tau[3]) and np.isnan(a.cosine[3])  # a rating is missing
    assert a.cosine[0] == pytest.approx((0.9 * 3 + 0.5 * 2 + 0.1) / (np.sqrt(1.07) * np.sqrt(14)))


def test_kendall_tau_b_matches_scipy() -> None:
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(3)
    for k in (2, 3, 4, 8):
        n = 50
        scores = rng.integers(0, 4, size=(n, k)).astype(float)
        ratings = rng.integers(0, 3, size=(n, k)).astype(float)
        sid = np.repeat(np.arange(n), k)
        got = rating_agreement(sid, scores.ravel(), ratings.ravel()).tau
        for i in range(n):
            want = stats.kendalltau(scores[i], ratings[i], variant="b").statistic
            assert got[i] == pytest.approx(want, nan_ok=True)


def test_split_within_datasets_keeps_scales_apart() -> None:
    # dataset a rates 1-5, dataset b rates 1-10: pooled, b would fill HighAvg
    rng = np.random.default_rng(4)
    var = list(rng.random(12))
    mean = list(rng.uniform(1, 5, 6)) + list(rng.uniform(6, 10, 6))
    st = stats_of(var, mean)
    group = ["a"] * 6 + ["b"] * 6
    grouped = split_regions_by_group(st, group)
    for name in ("a", "b"):
        assert grouped.groups[name].counts() == {"HighAvg": 2, "LowAvg": 2, "HighVar": 2}
    assert grouped.result.counts() == {"HighAvg": 4, "LowAvg": 4, "HighVar": 4}
    assert np.isnan(grouped.result.thresholds.mean)  # no single cut exists
    pooled = split_regions(st)
    high_avg = [i for i in range(12) if pooled.region_of(i) and pooled.regions[i] == 0]
    assert all(i >= 6 for i in high_avg)
    one = split_regions_by_group(st, ["x"] * 12)
    assert one.result.thresholds == pooled.thresholds


def reference_split(var: np.ndarray, mean: np.ndarray, sid: np.ndarray) -> list[str]:
    """The paper's split written as two full sorts, ties by sample id."""
    n = var.size
    by_var = np.lexsort((sid, -var))
    n_hv = round(n / 3)
    out = [""] * n
    for i in by_var[:n_hv]:
        out[i] = "HighVar"
    rest = by_var[n_hv:]
    by_mean = rest[np.lexsort((sid[rest], -mean[rest]))]
    for j, i in enumerate(by_mean):
        out[i] = "HighAvg" if j < rest.size // 2 else "LowAvg"
    return out


def test_linear_time_split_equals_the_sorted_reference() -> None:
    rng = np.random.default_rng(6)
    for n in (3, 10, 99, 1000):
        var = rng.integers(0, 4, n).astype(float)  # heavy ties at both cuts
        mean = rng.integers(0, 3, n).astype(float)
        ids = rng.permutation(n * 3)[:n] + 1
        st = stats_of(list(var), list(mean), list(ids))
        assert names(split_regions(st)) == reference_split(var, mean, ids)


def test_vectorised_stats_equal_a_plain_loop() -> None:
    rng = np.random.default_rng(7)
    sizes = rng.integers(1, 6, 200)
    sid = np.repeat(np.arange(200), sizes)
    values = rng.normal(size=sid.size)
    values[rng.random(sid.size) < 0.05] = np.nan
    names_ = rng.choice(["chosen", "rejected", "none"], sid.size).astype(object)
    codes = np.array([{"none": 0, "chosen": 1, "rejected": 2}[r] for r in names_])
    by_name = sample_stats(sid, names_, values)
    by_code = sample_stats(sid, codes, values)
    for i in range(200):
        v = values[sid == i]
        r = names_[sid == i]
        ok = v[~np.isnan(v)]
        assert by_name.k[i] == v.size and by_name.scored[i] == ok.size
        if ok.size:
            assert by_name.mean[i] == pytest.approx(ok.mean())
            assert by_name.var[i] == pytest.approx(ok.var())
        c, j = v[r == "chosen"], v[r == "rejected"]
        if c.size == 1 and j.size == 1 and not np.isnan(c[0]) and not np.isnan(j[0]):
            assert by_name.margin[i] == pytest.approx(c[0] - j[0])
        else:
            assert np.isnan(by_name.margin[i])
    np.testing.assert_array_equal(by_name.margin, by_code.margin)
