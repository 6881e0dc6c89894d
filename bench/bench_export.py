"""Benchmark: export 1,000,000 pairs to JSONL, beside a plain json.dumps loop over the same rows.

Run: python bench/bench_export.py [--pairs N] [--size short|hh] [--repeat R]
Each timed run starts after the earlier outputs are deleted and `sync` has written the
page cache back, so no run pays for another's writes. CPU time counts every process.
The database is built once per size in the temp folder and reused. Sizes (synthetic text):
  short: prompt ~60 characters, responses ~130: records of ~0.4 KB
  hh:    prompt ~190 characters, responses ~450 (HH-RLHF-like): records of ~1.2 KB
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from auditor.export import ExportOptions, export
from auditor.model import ResponseIn, Role, SampleIn
from store import Store

# a few non-ASCII words, as real data has: they make Python's strings wider and slower
WORDS = [
    "the",
    "model",
    "answer",
    "data",
    "prompt",
    "quality",
    "helpful",
    "honest",
    "aligned",
    "score",
    "map",
    "region",
    "pair",
    "naïve",
    "café",
    "—",
    "“quoted”",
    "中文",
]


def _text(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n))


SIZES = {"short": (8, 20), "hh": (30, 70)}
"""Words in a prompt and in a response."""


def build(path: Path, pairs: int, size: str = "hh") -> None:
    """A database of ``pairs`` labelled pairs with ratings."""
    rng = random.Random(0)
    prompt_words, response_words = SIZES[size]
    prompts = [_text(rng, prompt_words) for _ in range(1000)]
    answers = [_text(rng, response_words) for _ in range(1000)]
    with Store(path) as store, store.transaction():
        ds = store.add_dataset(
            name="bench", source_path="/nonexistent/bench.jsonl", format="trl", content_hash="x"
        )
        batch: list[SampleIn] = []
        for i in range(pairs):
            p, c, r = prompts[i % 1000], answers[i % 997], answers[(i * 7) % 991]
            record = json.dumps({"prompt": p, "chosen": c, "rejected": r})
            batch.append(
                SampleIn(
                    row=i + 1,
                    conversation=[{"role": "user", "content": p}],
                    responses=[
                        ResponseIn(f"{i} {c}", Role.CHOSEN, rating=float(i % 10)),
                        ResponseIn(f"{i} {r}", Role.REJECTED, rating=float(i % 7)),
                    ],
                    record=record,
                )
            )
            if len(batch) == 20_000:
                store.add_samples(ds, batch)
                batch = []
        store.add_samples(ds, batch)
        store.finish_dataset(ds, records=pairs, samples=pairs, responses=2 * pairs, rejects=0)


def baseline(db: Path, out: Path) -> int:
    """One SQL query for the pairs, a json.dumps per row, written in blocks: the floor."""
    conn = sqlite3.connect(db)
    rows = conn.execute(
        "SELECT s.prompt, c.text, r.text, c.rating, r.rating FROM samples s"
        " JOIN responses c ON c.sample_id = s.id AND c.role = 'chosen'"
        " JOIN responses r ON r.sample_id = s.id AND r.role = 'rejected' ORDER BY s.id"
    )
    dumps = json.dumps
    n = 0
    with out.open("w", encoding="utf-8") as f:
        while block := rows.fetchmany(10_000):
            f.write(
                "".join(
                    dumps(
                        {
                            "prompt": p,
                            "chosen": c,
                            "rejected": r,
                            "score_chosen": sc,
                            "score_rejected": sr,
                        },
                        ensure_ascii=False,
                    )
                    + "\n"
                    for p, c, r, sc, sr in block
                )
            )
            n += len(block)
    conn.close()
    return n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--pairs", type=int, default=1_000_000)
    ap.add_argument("--size", choices=sorted(SIZES), default="hh")
    ap.add_argument("--repeat", type=int, default=1)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-export-"))
    db = Path(tempfile.gettempdir()) / f"bench-export-{args.pairs}-{args.size}.db"
    if not db.exists():
        t = time.perf_counter()
        build(db, args.pairs, args.size)
        print(f"built {db} ({args.pairs:,} pairs) in {time.perf_counter() - t:.1f}s")

    def cpu() -> float:
        own = resource.getrusage(resource.RUSAGE_SELF)
        children = resource.getrusage(resource.RUSAGE_CHILDREN)  # the export's helper
        return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime

    def timed(run: Callable[[], int]) -> tuple[int, float, float]:
        for p in work.iterdir():
            p.unlink()
        os.sync()
        wall, used = time.perf_counter(), cpu()
        n = run()
        return n, time.perf_counter() - wall, cpu() - used

    results = []
    with Store(db) as store:
        for _ in range(args.repeat):
            results += [
                ("baseline: SQL join + json.dumps", timed(lambda: baseline(db, work / "b.jsonl"))),
                (
                    "auditor export --format trl",
                    timed(lambda: export(store, work / "o.jsonl", ExportOptions()).records_out),
                ),
                (
                    "  same, one process (workers=1)",
                    timed(
                        lambda: (
                            export(store, work / "o.jsonl", ExportOptions(), workers=1).records_out
                        )
                    ),
                ),
                (
                    "  same, to .jsonl.gz",
                    timed(lambda: export(store, work / "o.jsonl.gz", ExportOptions()).records_out),
                ),
            ]
        export(store, work / "o.jsonl", ExportOptions())
    size = (work / "o.jsonl").stat().st_size / 1e6
    print(f"{args.pairs:,} pairs, size {args.size}: output {size:,.0f} MB")
    print(f"{'':34} {'records':>10} {'wall s':>8} {'cpu s':>8} {'records/s':>10}")
    for name, (n, wall, cpu) in results:
        print(f"{name:34} {n:>10,} {wall:>8.2f} {cpu:>8.2f} {n / wall:>10,.0f}")
    ratio = min(r[1][1] for r in results[1::4]) / min(r[1][1] for r in results[0::4])
    print(f"export / baseline wall time (best of each): {ratio:.2f}; target: under 10 s wall")
    for p in work.iterdir():
        p.unlink()
    work.rmdir()


if __name__ == "__main__":
    main()
