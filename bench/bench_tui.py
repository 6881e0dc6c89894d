"""Review app speed through the Pilot: time to a painted map, and next-sample latency.

Run from the project root:  python -m bench.bench_tui [--samples 1000000] [--db PATH]

Builds a synthetic DB of labelled pairs (Store.add_synthetic), computes its map once
(reported apart: that is the map engine's cost), then measures the app on it and on a
1,000-sample baseline built in the same run. Targets (issue 5): map painted within 1.5 s
of start; next sample under 50 ms at the 95th percentile.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from auditor.analysis import ensure_map
from store import Store


def build(path: Path, n: int) -> dict[str, float]:
    """A scored synthetic DB of ``n`` pairs with its map; returns build timings."""
    timings = {}
    with Store(path) as store:
        if store.count_samples() == n:
            return {"generate_s": 0.0, "map_s": 0.0}
        t = time.perf_counter()
        scorer_id = store.add_synthetic(n)
        timings["generate_s"] = time.perf_counter() - t
        t = time.perf_counter()
        ensure_map(store, scorer_id)
        timings["map_s"] = time.perf_counter() - t
    return timings


async def measure(path: Path, presses: int) -> dict[str, float]:
    """Open the app, time the painted map, open HighVar, time ``presses`` next samples."""
    from tui.app import ReviewApp
    from tui.screens.map import MapScreen
    from tui.screens.sample import PaintedStatic, SampleScreen
    from tui.widgets.scatter import MapPlot

    started = time.perf_counter()
    app = ReviewApp(path, reviewer="bench", poll=False, resume=False)
    async with app.run_test(size=(120, 40)) as pilot:
        # pilot.pause() waits for the whole process to go idle (the region counts are
        # still being worked out in a thread), so watch for the plot's own first paint
        while not (isinstance(app.screen, MapScreen) and app.screen.query_one(MapPlot).painted_at):
            await asyncio.sleep(0.002)
        painted = app.screen.query_one(MapPlot).painted_at - started
        if not presses:
            return {"map_painted_s": painted}
        await app.workers.wait_for_complete()
        await pilot.press("v")
        await app.workers.wait_for_complete()
        await pilot.pause()
        await pilot.press("enter")
        while not (isinstance(app.screen, SampleScreen) and app.screen.view is not None):
            await pilot.pause(0.005)
        screen = app.screen
        meta = screen.query_one("#sample-meta", PaintedStatic)
        lat: list[float] = []
        for _ in range(presses):
            before = screen.current
            t = time.perf_counter()
            # the Pilot's press waits for the app to go idle (tens of ms of sleeps of its
            # own), so latency is taken to the first paint of the new sample's header
            await pilot.press("n")
            while screen.view is None or screen.view.sample_id == before:
                await app.workers.wait_for_complete()
                await pilot.pause()
            while meta.painted_at < screen.shown_at:
                await asyncio.sleep(0.001)
            lat.append((meta.painted_at - t) * 1000)
    lat = sorted(lat) or [0.0]
    return {
        "map_painted_s": painted,
        "next_p50_ms": statistics.median(lat),
        "next_p95_ms": lat[int(0.95 * (len(lat) - 1))],
        "next_max_ms": lat[-1],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=1_000_000)
    parser.add_argument("--db", type=Path, default=None, help="reuse or create this DB")
    parser.add_argument("--presses", type=int, default=300)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        big = args.db or Path(tmp) / "big.db"
        small = Path(tmp) / "small.db"
        built = build(big, args.samples)
        build(small, 1000)
        base_first = asyncio.run(measure(small, 0))
        big_first = asyncio.run(measure(big, 0))
        base = asyncio.run(measure(small, args.presses))
        result = asyncio.run(measure(big, args.presses))
        base["first_painted_s"] = base_first["map_painted_s"]
        result["first_painted_s"] = big_first["map_painted_s"]
    print(
        f"built {args.samples:,} pairs in {built['generate_s']:.1f} s,"
        f" first map in {built['map_s']:.1f} s (map engine, once per score change)"
    )
    print(f"{'measure':<16}{'1,000 (baseline)':>18}{f'{args.samples:,}':>14}{'target':>10}")
    rows = [
        ("map, 1st open", "first_painted_s", "s", "1.5"),
        ("map painted", "map_painted_s", "s", "1.5"),
        ("next p50", "next_p50_ms", "ms", ""),
        ("next p95", "next_p95_ms", "ms", "50"),
        ("next max", "next_max_ms", "ms", ""),
    ]
    for label, key, unit, target in rows:
        fmt = "{:.2f}" if unit == "s" else "{:.1f}"
        print(
            f"{label + ' (' + unit + ')':<16}{fmt.format(base[key]):>18}"
            f"{fmt.format(result[key]):>14}{target:>10}"
        )


if __name__ == "__main__":
    main()
