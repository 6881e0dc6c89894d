"""Suspects, agreement between scorers and region composition."""

from __future__ import annotations

import numpy as np
import pytest

from auditor.diagnosis import (
    DISAGREEMENT,
    FLIPPED,
    LOW_INFORMATION,
    average_ranks,
    cohen_kappa,
    find_suspects,
    region_composition,
    scorer_agreement,
    spearman,
)
from auditor.display import clean_text, one_line
from auditor.model import Action
from store import Store
from tests.mapdata import add_dataset, multi, pair, score


def pairs_db(store: Store) -> tuple[list[int], int]:
    """Five pairs on a 0-10 scorer: two flipped (one clearly), one tie, one tiny, one fine."""
    ids = add_dataset(store, "pairs", [pair(None, None)] * 5)
    margins = [(9.0, 1.0), (2.0, 8.0), (5.0, 5.0), (5.0, 5.2), (4.0, 5.0)]
    values = {}
    for sid, (c, r) in zip(ids, margins, strict=True):
        values[(sid, 0)], values[(sid, 1)] = c, r
    return ids, score(store, "judge", values)


def test_flipped_and_low_information_pairs_ranked_with_evidence(store: Store) -> None:
    ids, scorer = pairs_db(store)
    store.decide(ids[1], Action.FLIP, "ana")
    d = find_suspects(store, scorer)
    # pair scores span 1..9: the tiny margin is 5 % of 8 = 0.4
    assert d.tiny_margin == {"pairs": pytest.approx(0.4)}
    flipped = d.suspects[FLIPPED]
    assert [s.sample_id for s in flipped] == [ids[1], ids[4]]  # most negative first
    assert flipped[0].margin == pytest.approx(-6.0)
    assert flipped[0].relative_margin == pytest.approx(-0.75)
    assert flipped[0].decision == "flip"
    assert [(r["role"], r["score"]) for r in flipped[0].responses] == [
        ("chosen", 2.0),
        ("rejected", 8.0),
    ]
    assert flipped[0].prompt == "q1"
    low = d.suspects[LOW_INFORMATION]
    assert [s.sample_id for s in low] == [ids[2], ids[3]]  # the tie, then |m| = 0.2
    assert d.totals == {FLIPPED: 2, DISAGREEMENT: 0, LOW_INFORMATION: 2}
    strict = find_suspects(store, scorer, margin=2.0)
    assert [s.sample_id for s in strict.suspects[FLIPPED]] == [ids[1]]
    assert strict.totals[LOW_INFORMATION] == 3
    assert len(find_suspects(store, scorer, top=1).suspects[FLIPPED]) == 1


def test_multi_response_disagreement_lowest_tau_first(store: Store) -> None:
    ids = add_dataset(
        store, "multi", [multi(1, 2, 3, 4), multi(1, 2, 3, 4), multi(1, 2, 3, 4), multi(1, 2, 3)]
    )
    scores = [(0.1, 0.2, 0.3, 0.4), (0.4, 0.3, 0.2, 0.1), (0.2, 0.1, 0.4, 0.3), (0.3, 0.1, 0.2)]
    values = {(sid, j): v for sid, row in zip(ids, scores, strict=True) for j, v in enumerate(row)}
    scorer = score(store, "judge", values)
    d = find_suspects(store, scorer)
    dis = d.suspects[DISAGREEMENT]
    # sample 2 is reversed (tau -1), sample 4 has tau -1/3; samples 1 and 3 agree
    assert [s.sample_id for s in dis] == [ids[1], ids[3]]
    assert dis[0].tau == pytest.approx(-1.0)
    assert dis[1].tau == pytest.approx(-1 / 3)
    assert dis[0].cosine is not None and dis[0].cosine < 1
    assert [r["rating"] for r in dis[0].responses] == [1, 2, 3, 4]
    assert find_suspects(store, scorer, max_tau=0.5).totals[DISAGREEMENT] == 3


def test_dataset_filter_limits_suspects(store: Store) -> None:
    _ids, scorer = pairs_db(store)
    other = add_dataset(store, "other", [pair(None, None)])
    score(store, "judge", {(other[0], 0): 0.0, (other[0], 1): 10.0})
    assert find_suspects(store, scorer).totals[FLIPPED] == 3
    only = find_suspects(store, scorer, dataset="other")
    assert [s.sample_id for s in only.suspects[FLIPPED]] == other


def test_ranks_spearman_and_kappa() -> None:
    np.testing.assert_allclose(average_ranks([10, 20, 20, 5]), [2, 3.5, 3.5, 1])
    assert spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(5)
    a, b = rng.integers(0, 5, 200), rng.integers(0, 5, 200)
    assert spearman(a, b) == pytest.approx(stats.spearmanr(a, b).statistic)
    # 4 of 5 agree; both say 1 three times out of five, -1 twice: pe = 0.6*0.6 + 0.4*0.4
    kappa = cohen_kappa([1, 1, 1, -1, -1], [1, 1, -1, -1, 1])
    assert kappa == pytest.approx((0.6 - 0.52) / (1 - 0.52))
    assert np.isnan(cohen_kappa([], []))


def test_two_scorers_agreement(store: Store) -> None:
    ids = add_dataset(store, "m", [multi(None, None, None)] * 3)
    a = {(s, j): float(j) for s in ids for j in range(3)}
    b = dict(a)
    b[(ids[2], 0)], b[(ids[2], 2)] = 2.0, 0.0  # reverse the last sample
    sa, sb = score(store, "a", a), score(store, "b", b)
    got = scorer_agreement(store, sa, sb)
    assert got["pairs"] == 9
    assert got["same_order"] == pytest.approx(6 / 9)  # pairs (0,1), (0,2), (1,2) flip in one
    assert got["responses"] == 9
    assert got["spearman"] is not None and got["spearman"] < 1
    # a always says "the later response is better": its direction never varies, so all of
    # the observed 6/9 agreement is what chance predicts, and kappa is 0
    assert got["kappa"] == pytest.approx(0.0)
    assert got["same_region"] is not None


def test_region_composition_by_source_and_model(store: Store) -> None:
    ids = add_dataset(
        store,
        "d",
        [pair(None, None)] * 6,
        sources=["evol", "evol", "flan", "flan", None, "flan"],
    )
    # variances 16, 9, 4, 1, 0.25, 0: the first two are HighVar
    gaps = [8, 6, 4, 2, 1, 0]
    scorer = score(
        store, "s", {(s, j): 10.0 - j * g for s, g in zip(ids, gaps, strict=True) for j in range(2)}
    )
    got = region_composition(store, scorer)
    assert got["source"]["HighVar"] == {"evol": 2}
    # the rest by mean: 10 (flan), 9.5 (no source) above the median; 9 and 8 (flan) below
    assert got["source"]["HighAvg"] == {"flan": 1, "(none)": 1}
    assert got["source"]["LowAvg"] == {"flan": 2}
    # every sample has one response from m0 and one from m1
    assert got["model"]["HighVar"] == {"m0": 2, "m1": 2}
    only = region_composition(store, scorer, dataset="nope")
    assert only["source"]["HighVar"] == {}


def test_one_line_strips_terminal_sequences() -> None:
    text = "a\x1b[31mred\x1b[0m\nnext\x1b]0;title\x07 [INST]x[/INST]\x00"
    assert one_line(text, 70) == "ared next [INST]x[/INST]"  # a colour code is no space
    assert one_line("x" * 100, 10) == "x" * 9 + "…"


def test_clean_text_removes_whole_sequences_and_keeps_line_breaks() -> None:
    text = "a\x1b[31mred\x1b[0m\n\tnext\x1b]0;title\x07\x1b]8;;http://x\x1b\\L\x00\x9b"
    assert clean_text(text) == "ared\n    nextL"
