"""A 1,000,000-sample database opens and pages through the app (marked slow: ~1 min)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from textual.widgets import DataTable

from auditor.analysis import ensure_map
from store import Store
from tests.tui_support import settle
from tui.app import ReviewApp
from tui.screens.queue import QueueScreen
from tui.screens.sample import SampleScreen

N = 1_000_000

pytestmark = pytest.mark.slow


@pytest.fixture(scope="session")
def million_db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A scored DB of a million synthetic pairs with its map, built once per session."""
    path = tmp_path_factory.mktemp("large") / "million.db"
    with Store(path) as store:
        scorer_id = store.add_synthetic(N)
        ensure_map(store, scorer_id)
    yield path


async def test_million_sample_db_opens_and_pages(million_db: Path) -> None:
    app = ReviewApp(million_db, reviewer="big", poll=False, resume=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        table = app.screen.query_one("#regions", DataTable)
        counts = [
            int(str(table.get_row(r)[3]).replace(",", "")) for r in ("HighAvg", "LowAvg", "HighVar")
        ]
        assert sum(counts) == N
        assert all(abs(c - N / 3) <= 1 for c in counts)

        await pilot.press("v")
        await settle(pilot)
        queue = app.screen
        assert isinstance(queue, QueueScreen)
        pages = [list(queue.rows)]
        for _ in range(3):
            await pilot.press("n")
            await settle(pilot)
            pages.append(list(queue.rows))
        assert all(len(p) == 100 for p in pages)
        flat = [r for p in pages for r in p]
        assert len({r.sample_id for r in flat}) == 400
        assert queue.queue.sort == "mean"
        assert [r.cursor for r in flat] == sorted(r.cursor for r in flat)
        await pilot.press("p")
        await settle(pilot)
        assert [r.sample_id for r in queue.rows] == [r.sample_id for r in pages[2]]

        await pilot.press("enter")
        await settle(pilot)
        sample = app.screen
        assert isinstance(sample, SampleScreen)
        seen = [sample.current]
        for _ in range(5):
            await pilot.press("n")
            await settle(pilot)
            seen.append(sample.current)
        expected = [r.sample_id for r in pages[2]][:6]
        assert seen == expected
