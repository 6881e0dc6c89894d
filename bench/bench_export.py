"""Benchmark: export 1,000,000 pairs to JSONL, beside a plain json.dumps loop over the same rows.

Run: python bench/bench_export.py [--pairs N] [--db PATH]
The database is built once (synthetic pairs, about 1 KB of text each) and reused.
"""

from __future__ import annotations

import argparse
import json
import random
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from auditor.export import ExportOptions, export  # noqa: E402
from auditor.model import ResponseIn, Role, SampleIn  # noqa: E402
from store import Store  # noqa: E402

WORDS = "the model answer data prompt quality helpful honest aligned score map region pair".split()


def _text(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n))


def build(path: Path, pairs: int) -> None:
    """A database of ``pairs`` labelled pairs with ratings."""
    rng = random.Random(0)
    prompts = [_text(rng, 30) for _ in range(1000)]
    answers = [_text(rng, 70) for _ in range(1000)]
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
                        {"prompt": p, "chosen": c, "rejected": r, "score_chosen": sc,
                         "score_rejected": sr},
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
    ap.add_argument("--db", type=Path, default=None)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-export-"))
    db = args.db or Path(tempfile.gettempdir()) / f"bench-export-{args.pairs}.db"
    if not db.exists():
        t = time.perf_counter()
        build(db, args.pairs)
        print(f"built {db} ({args.pairs:,} pairs) in {time.perf_counter() - t:.1f}s")

    t = time.perf_counter()
    n_base = baseline(db, work / "baseline.jsonl")
    base_s = time.perf_counter() - t

    with Store(db) as store:
        t = time.perf_counter()
        report = export(store, work / "export.jsonl", ExportOptions(format="trl"))
        ours_s = time.perf_counter() - t
        t = time.perf_counter()
        report_gz = export(store, work / "export.jsonl.gz", ExportOptions(format="trl"))
        gz_s = time.perf_counter() - t

    size = (work / "export.jsonl").stat().st_size / 1e6
    print(f"{'':34} {'records':>10} {'seconds':>8} {'records/s':>10}")
    print(f"{'baseline: SQL join + json.dumps':34} {n_base:>10,} {base_s:>8.2f} {n_base / base_s:>10,.0f}")
    print(
        f"{'auditor export --format trl':34} {report.records_out:>10,} {ours_s:>8.2f} "
        f"{report.records_out / ours_s:>10,.0f}"
    )
    print(
        f"{'  same, to .jsonl.gz':34} {report_gz.records_out:>10,} {gz_s:>8.2f} "
        f"{report_gz.records_out / gz_s:>10,.0f}"
    )
    print(f"output {size:,.0f} MB; ratio export/baseline {ours_s / base_s:.2f}; target < 10 s")
    for p in work.iterdir():
        p.unlink()
    work.rmdir()


if __name__ == "__main__":
    main()
