"""Benchmark: map statistics and regions for 1,000,000 samples x 4 responses.

Prints the compute time of this project's vectorised code beside a baseline measured in
the same run (pandas groupby + sort, the obvious way to write it), then, separately, the
time to read the same scores from SQLite through the Store and to store the map.

    /work/venv/bin/python bench/bench_map.py [--samples N] [--k K] [--sqlite N | --no-sqlite]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from auditor.mapstats import rating_agreement, sample_stats, split_regions


def best_of(repeat: int, fn: Callable[[], Any]) -> tuple[float, Any]:
    """The fastest of ``repeat`` runs (seconds) and the last result."""
    best, out = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def columns(n: int, k: int, seed: int = 0) -> tuple[np.ndarray, ...]:
    """Per-response columns as `Store.map_columns` gives them: sample id, role code, score,
    rating."""
    rng = np.random.default_rng(seed)
    sid = np.repeat(np.arange(1, n + 1, dtype=np.int64), k)
    role = np.zeros(n * k, dtype=np.int64)  # 0: no label, as in multi-response data
    score = rng.beta(5, 2, n * k)
    rating = rng.integers(1, 6, n * k).astype(np.float64)  # 1-5 ratings: many ties
    return sid, role, score, rating


def ours(sid: np.ndarray, role: np.ndarray, score: np.ndarray, rating: np.ndarray) -> Any:
    """This project's path: statistics, the paper's split, tau-b and cosine."""
    stats = sample_stats(sid, role, score)
    result = split_regions(stats)
    agreement = rating_agreement(sid, score, rating)
    return result, agreement


def baseline(sid: np.ndarray, score: np.ndarray) -> Any:
    """pandas: groupby mean and population variance, then the split by two sorts."""
    import pandas as pd

    df = pd.DataFrame({"sid": sid, "s": score})
    g = df.groupby("sid")["s"].agg(["mean", lambda x: x.var(ddof=0)])
    g.columns = ["mean", "var"]
    g = g.reset_index().sort_values(["var", "sid"], ascending=[False, True], kind="stable")
    n_hv = round(len(g) / 3)
    rest = g.iloc[n_hv:].sort_values(["mean", "sid"], ascending=[False, True], kind="stable")
    return g.iloc[:n_hv]["sid"].to_numpy(), rest["sid"].to_numpy()[: len(rest) // 2]


def baseline_fast(sid: np.ndarray, score: np.ndarray) -> Any:
    """pandas with built-in aggregations only (mean, var(ddof=0)): a stronger baseline."""
    import pandas as pd

    df = pd.DataFrame({"sid": sid, "s": score})
    g = df.groupby("sid")["s"]
    out = pd.DataFrame({"mean": g.mean(), "var": g.var(ddof=0)}).reset_index()
    out = out.sort_values(["var", "sid"], ascending=[False, True], kind="stable")
    n_hv = round(len(out) / 3)
    rest = out.iloc[n_hv:].sort_values(["mean", "sid"], ascending=[False, True], kind="stable")
    return out.iloc[:n_hv]["sid"].to_numpy(), rest["sid"].to_numpy()[: len(rest) // 2]


def sqlite_figures(n: int, k: int, path: Path, store_baseline: bool) -> dict[str, float]:
    """Build (once) a database of n samples x k scored responses; time reading and storing.

    Each step runs once: on this shared 2-core machine a second pass mostly measures the
    neighbours.
    """
    from auditor.analysis import compute_scorer_map, ensure_map
    from auditor.model import ResponseIn, Role, SampleIn, ScoreIn
    from store import Store

    fresh = not path.exists()
    store = Store(path)
    figures: dict[str, float] = {}
    scorer = store.scorer("bench", "test", {"kind": "bench", "n": n, "k": k})
    if fresh:
        t0 = time.perf_counter()
        rng = np.random.default_rng(1)
        with store.transaction():
            did = store.add_dataset(
                name="bench", source_path="bench", format="test", content_hash=f"bench{n}x{k}"
            )
            batch = 20_000
            for start in range(0, n, batch):
                rows = [
                    SampleIn(
                        row=i,
                        conversation=[{"role": "user", "content": f"q{i}"}],
                        responses=[
                            ResponseIn(f"a{j}", Role.NONE, rating=float(rng.integers(1, 6)))
                            for j in range(k)
                        ],
                        record="{}",
                        kind="multi",
                    )
                    for i in range(start, min(start + batch, n))
                ]
                store.add_samples(did, rows)
        pending = store.pending_responses(scorer.id)
        values = rng.beta(5, 2, len(pending))
        store.save_scores(
            scorer.id,
            [ScoreIn(p.response_id, float(v)) for p, v in zip(pending, values, strict=True)],
        )
        figures["build_db_s"] = time.perf_counter() - t0
    t, _ = best_of(1, lambda: store.score_table(scorer.id))
    figures["read: Store.score_table (ordered, role names) [baseline]"] = t

    def read_matrix() -> np.ndarray:
        return np.array(store.map_columns(scorer.id), dtype=np.float64)

    t, _ = best_of(1, read_matrix)
    figures["read: Store.map_columns -> float matrix (ours)"] = t
    t, _ = best_of(1, lambda: compute_scorer_map(store, scorer.id))
    figures["read + compute: compute_scorer_map"] = t
    smap = compute_scorer_map(store, scorer.id)
    rows = [
        (int(i), 4, float(m), float(v), None, None, None, "HighAvg")
        for i, m, v in zip(
            smap.result.stats.sample_id, smap.result.stats.mean, smap.result.stats.var, strict=True
        )
    ]
    t, _ = best_of(1, lambda: store.save_map_bulk(scorer.id, rows, thresholds={}, fingerprint=""))
    figures["store 1M rows: Store.save_map_bulk (ours)"] = t
    if store_baseline:
        t, _ = best_of(1, lambda: store.save_map(scorer.id, rows, thresholds={}, fingerprint=""))
        figures["store 1M rows: Store.save_map, per-row indexes [baseline]"] = t
    t, _ = best_of(1, lambda: ensure_map(store, scorer.id, force=True))
    figures["all: ensure_map (read, compute, store)"] = t
    store.close()
    return figures


def main() -> None:
    """Run the benchmark and print the figures side by side."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=1_000_000)
    ap.add_argument("--k", type=int, default=4)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--sqlite", type=int, default=1_000_000, help="samples in the SQLite part")
    ap.add_argument("--no-sqlite", action="store_true")
    ap.add_argument("--db", type=Path, default=None, help="reuse this benchmark database")
    ap.add_argument(
        "--store-baseline", action="store_true", help="also time Store.save_map (slow: ~1 min)"
    )
    args = ap.parse_args()
    n, k = args.samples, args.k
    print(f"map statistics and regions: {n:,} samples x {k} responses, best of {args.repeat}")
    sid, role, score, rating = columns(n, k)

    t_stats, stats = best_of(args.repeat, lambda: sample_stats(sid, role, score))
    t_split, _ = best_of(args.repeat, lambda: split_regions(stats))
    t_agree, _ = best_of(args.repeat, lambda: rating_agreement(sid, score, rating))
    t_all, (result, _agreement) = best_of(args.repeat, lambda: ours(sid, role, score, rating))
    t_base, (hv, ha) = best_of(1, lambda: baseline_fast(sid, score))
    # the two must agree before their times mean anything
    assert set(hv.tolist()) == set(stats.sample_id[result.regions == 2].tolist())
    assert set(ha.tolist()) == set(stats.sample_id[result.regions == 0].tolist())
    t_lambda, _ = best_of(1, lambda: baseline(sid[: 100_000 * k], score[: 100_000 * k]))

    print(f"{'step':44} {'seconds':>9}")
    print(f"{'statistics (K, mean, variance, margin)':44} {t_stats:9.3f}")
    print(f"{'regions (the paper split, ties by id)':44} {t_split:9.3f}")
    print(f"{'Kendall tau-b and cosine vs ratings':44} {t_agree:9.3f}")
    print(f"{'ours, all of the above':44} {t_all:9.3f}   target < 1 s")
    print(f"{'baseline: pandas groupby mean/var + sorts':44} {t_base:9.3f}   (no tau, no margin)")
    print(
        f"{'baseline: pandas groupby lambda var, 100k':44} {t_lambda:9.3f}"
        f"   x{n / 100_000:.0f} = ~{t_lambda * n / 100_000:.0f} s at {n:,}"
    )
    if args.no_sqlite:
        return
    m = args.sqlite
    path = args.db or Path(tempfile.gettempdir()) / f"auditor_bench_map_{m}x{k}.db"
    print(f"\nSQLite, {m:,} samples x {k} responses ({path}):")
    for name, value in sqlite_figures(m, k, path, args.store_baseline).items():
        print(f"{name:58} {value:9.3f}")


if __name__ == "__main__":
    main()
