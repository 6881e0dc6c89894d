"""Ingest speed and memory, side by side with `sqlite-utils insert --nl` on the same file.

Builds a 100,000-pair HH-style JSONL (about 145 MB) by repeating the shared HH-RLHF file
with unique suffixes, then times, in this one run:
  baseline: sqlite-utils insert DB t FILE --nl
  ours:     auditor ingest FILE --db DB
and, with --memory, the peak memory of `auditor ingest` on a ~1 GB file.

    python bench/bench_ingest.py [--pairs 100000] [--memory]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HH = ROOT.parent / "shared" / "data" / "hh-rlhf" / "harmless-base-test.jsonl"


def make_file(path: Path, pairs: int) -> int:
    """Repeat the HH records, each with a unique suffix, until ``pairs`` lines are written."""
    records = [json.loads(line) for line in HH.open(encoding="utf-8")]
    with path.open("w", encoding="utf-8") as f:
        for i in range(pairs):
            r = records[i % len(records)]
            tag = f" [{i}]"
            f.write(json.dumps({"chosen": r["chosen"] + tag, "rejected": r["rejected"] + tag}))
            f.write("\n")
    return path.stat().st_size


def timed(cmd: list[str]) -> tuple[float, float]:
    """Wall seconds and CPU seconds (user + system, all processes) of a child command."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, cwd=ROOT)
    seconds = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return seconds, cpu


def peak_of(cmd: list[str]) -> int:
    """Peak RSS (MB) of one command, measured by GNU time's wrapper-free way: a child shell."""
    code = (
        "import resource, subprocess, sys\n"
        f"subprocess.run({cmd!r}, check=True, stdout=subprocess.DEVNULL)\n"
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True, cwd=ROOT
    )
    return int(out.stdout.strip())


def main() -> None:
    """Run the benchmark and print the figures side by side."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--pairs", type=int, default=100_000)
    ap.add_argument("--memory", action="store_true", help="also measure peak memory on ~1 GB")
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args()
    if not HH.exists():
        sys.exit(f"skipped: {HH} is absent (the shared real data is needed)")
    sqlite_utils = shutil.which("sqlite-utils") or str(Path(sys.executable).parent / "sqlite-utils")
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "hh100k.jsonl"
        size = make_file(data, args.pairs)
        print(f"input: {args.pairs:,} pairs, {size / 1e6:.0f} MB")
        env_python = [sys.executable, "-m", "auditor"]
        rows = []
        for run in range(args.repeat):
            for name, cmd in (
                (
                    "sqlite-utils insert --nl",
                    [sqlite_utils, "insert", f"{tmp}/b{run}.db", "t", str(data), "--nl"],
                ),
                ("auditor ingest", [*env_python, "ingest", str(data), "--db", f"{tmp}/a{run}.db"]),
            ):
                seconds, cpu = timed(cmd)
                rows.append((name, run, seconds))
                print(
                    f"  run {run}: {name:26} {seconds:6.2f} s wall, {cpu:6.2f} s CPU "
                    f"({args.pairs / seconds:,.0f} pairs/s)"
                )
                for p in Path(tmp).glob("*.db*"):
                    p.unlink()
        base = min(s for n, _, s in rows if n.startswith("sqlite"))
        ours = min(s for n, _, s in rows if n.startswith("auditor"))
        print(
            f"best of {args.repeat}: sqlite-utils {base:.2f} s, auditor {ours:.2f} s, "
            f"ratio {ours / base:.2f}x (target <= 1.0x, aim 0.6x); "
            f"load average now {os.getloadavg()[0]:.1f}"
        )
        if args.memory:
            big = Path(tmp) / "hh1g.jsonl"
            big_size = make_file(big, args.pairs * 7)
            peak = peak_of([*env_python, "ingest", str(big), "--db", f"{tmp}/m.db"])
            print(
                f"peak memory of auditor ingest on {big_size / 1e9:.2f} GB: {peak} MB "
                "(target < 300 MB)"
            )


if __name__ == "__main__":
    main()
