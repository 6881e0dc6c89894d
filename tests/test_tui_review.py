"""The review loop through the Pilot: open a region, decide, undo, quit, reopen."""

from __future__ import annotations

from pathlib import Path

from rich.text import Text
from textual import events
from textual.widgets import DataTable, Static

from store import Store
from tests.tui_support import build_pairs, settle
from tui.app import ReviewApp
from tui.screens.map import MapScreen
from tui.screens.queue import QueueScreen
from tui.screens.sample import SampleScreen


def _meta(app: ReviewApp) -> str:
    content = app.screen.query_one("#sample-meta", Static).content
    assert isinstance(content, Text)
    return content.plain


async def test_review_loop_survives_a_restart(tmp_path: Path) -> None:
    db = tmp_path / "r.db"
    build_pairs(db).close()
    app = ReviewApp(db, reviewer="alice", poll=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert isinstance(app.screen, MapScreen)
        regions = app.screen.query_one("#regions", DataTable)
        assert regions.row_count == 4
        await pilot.press("v")
        await settle(pilot)
        assert isinstance(app.screen, QueueScreen)
        queue = app.screen
        assert queue.rows, "the HighVar queue is empty"
        first = queue.rows[0].sample_id
        await pilot.press("enter")
        await settle(pilot)
        sample = app.screen
        assert isinstance(sample, SampleScreen)
        assert sample.current == first
        await pilot.press("f")
        await settle(pilot)
        assert "FLIPPED" in _meta(app)
        await pilot.press("n")
        await settle(pilot)
        second = sample.current
        assert second != first
        await pilot.press("d")
        await settle(pilot)
        await pilot.press("n")
        await settle(pilot)
        third = sample.current
        await pilot.press("k")
        await settle(pilot)
        assert "KEPT" in _meta(app)
        await pilot.press("u")
        await settle(pilot)
        assert "none yet" in _meta(app)
        await pilot.press("p")
        await settle(pilot)
        assert sample.current == second
        assert "DROPPED" in _meta(app)
        await pilot.press("n")
        await settle(pilot)
        await pilot.press("q")

    with Store(db) as store:
        assert store.decision(first).action == "flip"
        assert store.decision(second).action == "drop"
        assert store.decision(third).action is None
        assert store.decision(first).reviewer == "alice"

    again = ReviewApp(db, reviewer="alice", poll=False)
    async with again.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert isinstance(again.screen, SampleScreen), "did not reopen where the reviewer stopped"
        assert again.screen.current == third
        assert "none yet" in _meta(again)
        await pilot.press("U")  # redo survives the restart
        await settle(pilot)
        assert "KEPT" in _meta(again)
        await pilot.press("escape")
        await settle(pilot)
        assert isinstance(again.screen, QueueScreen)
        await pilot.press("escape")
        await settle(pilot)
        assert isinstance(again.screen, MapScreen)
        table = again.screen.query_one("#regions", DataTable)
        row = table.get_row("HighVar")
        assert [str(c) for c in row[4:7]] == ["3", "1", "1"]  # reviewed, flipped, dropped
    with Store(db) as store:
        assert store.decision(third).action == "keep"


async def test_suspects_queue_lists_negative_margins_most_negative_first(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    build_pairs(db).close()
    app = ReviewApp(db, reviewer="bob", poll=False)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await pilot.press("s")
        await settle(pilot)
        queue = app.screen
        assert isinstance(queue, QueueScreen)
        margins = [r.margin for r in queue.rows]
        assert margins and all(m < 0 for m in margins)
        assert margins == sorted(margins)
        assert queue.total == len(margins)


async def test_queue_filters_status_and_search(tmp_path: Path) -> None:
    db = tmp_path / "f.db"
    store = build_pairs(db)
    scorer = store.find_scorer(None)
    high_avg = [r for r in store.queue_page(_q(scorer.id, "HighAvg"), limit=500)]
    store.decide(high_avg[0].sample_id, "drop", "carol")
    store.close()
    app = ReviewApp(db, reviewer="carol", poll=False, resume=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("a")
        await settle(pilot)
        queue = app.screen
        assert isinstance(queue, QueueScreen)
        assert queue.total == len(high_avg)
        await pilot.press("t")  # status: undecided
        await settle(pilot)
        assert queue.queue.status == "undecided"
        assert high_avg[0].sample_id not in [r.sample_id for r in queue.rows]
        assert queue.total == len(high_avg) - 1
        await pilot.press("t")  # status: decided
        await settle(pilot)
        assert [r.sample_id for r in queue.rows] == [high_avg[0].sample_id]
        await pilot.press("t", "t", "t", "t", "t")  # back round to all
        await settle(pilot)
        assert queue.queue.status == "all"
        wanted = high_avg[1]
        needle = wanted.prompt.split()[-1]  # "12?" style: unique enough with the prefix
        await pilot.press("slash")
        await pilot.press(*list(f"number {needle}"))
        await pilot.press("enter")
        await settle(pilot)
        assert [r.sample_id for r in queue.rows] == [wanted.sample_id]


def _q(scorer_id: int, region: str | None) -> object:
    from store.review import Queue

    return Queue(scorer_id, region, sort="mean")


async def test_next_undecided_skips_decided_samples(tmp_path: Path) -> None:
    db = tmp_path / "u.db"
    build_pairs(db).close()
    app = ReviewApp(db, reviewer="una", poll=False, resume=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("l")
        await settle(pilot)
        queue = app.screen
        assert isinstance(queue, QueueScreen)
        order = [r.sample_id for r in queue.rows]
        await pilot.press("enter")
        await settle(pilot)
        sample = app.screen
        assert isinstance(sample, SampleScreen)
        for _ in range(3):
            await pilot.press("k", "n")
            await settle(pilot)
        assert sample.current == order[3]
        await pilot.press("p", "p", "p")
        await settle(pilot)
        assert sample.current == order[0]
        await pilot.press("N")
        await settle(pilot)
        assert sample.current == order[3]
        await pilot.press("escape")
        await settle(pilot)
        assert queue.rows[0].sample_id == order[0]  # the rows just above come back too
        table = queue.query_one("#queue", DataTable)
        assert queue.rows[table.cursor_row].sample_id == order[3]
        assert str(table.get_row_at(0)[1]).startswith("✓ keep")


async def test_every_key_press_moves_one_sample(tmp_path: Path) -> None:
    db = tmp_path / "k.db"
    build_pairs(db).close()
    app = ReviewApp(db, reviewer="kim", poll=False, resume=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("v")
        await settle(pilot)
        queue = app.screen
        assert isinstance(queue, QueueScreen)
        order = [r.sample_id for r in queue.rows]
        await pilot.press("enter")
        await settle(pilot)
        sample = app.screen
        assert isinstance(sample, SampleScreen)
        # typed faster than samples load: none of the presses may be lost
        app.post_message(events.Key("n", "n"))
        app.post_message(events.Key("n", "n"))
        app.post_message(events.Key("n", "n"))
        app.post_message(events.Key("p", "p"))
        await settle(pilot)
        assert sample.current == order[2]
        assert sample.view is not None and sample.view.sample_id == order[2]
