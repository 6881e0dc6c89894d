"""SVG snapshots of the main screens on the bundled demo set, at 80x24 and wide."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from auditor.analysis import ensure_map
from auditor.ingest import ingest_file
from auditor.scorers.annotations import score_annotations
from store import Store
from tests.tui_support import settle
from tui.app import ReviewApp


@pytest.fixture
def demo_db(tmp_path: Path) -> Path:
    db = tmp_path / "demo.db"
    demo = Path(str(resources.files("auditor.demo").joinpath("demo.jsonl.gz")))
    with Store(db) as store:
        ingest_file(store, demo, name="demo")
        score_annotations(store)
        ensure_map(store, store.find_scorer(None).id)
    return db


def _app(db: Path) -> ReviewApp:
    return ReviewApp(db, reviewer="snap", poll=False, resume=False)


async def _settle(pilot: Any) -> None:
    await settle(pilot)


def test_map_screen_80x24(snap_compare: Any, demo_db: Path) -> None:
    assert snap_compare(_app(demo_db), terminal_size=(80, 24), run_before=_settle)


def test_map_screen_wide(snap_compare: Any, demo_db: Path) -> None:
    assert snap_compare(_app(demo_db), terminal_size=(140, 36), run_before=_settle)


def test_queue_screen_80x24(snap_compare: Any, demo_db: Path) -> None:
    async def open_queue(pilot: Any) -> None:
        await settle(pilot)
        await pilot.press("v")
        await settle(pilot)

    assert snap_compare(_app(demo_db), terminal_size=(80, 24), run_before=open_queue)


def test_sample_screen_side_by_side(snap_compare: Any, demo_db: Path) -> None:
    async def open_sample(pilot: Any) -> None:
        await settle(pilot)
        await pilot.press("l")
        await settle(pilot)
        await pilot.press("enter")
        await settle(pilot)

    assert snap_compare(_app(demo_db), terminal_size=(140, 40), run_before=open_sample)


def test_help_screen(snap_compare: Any, demo_db: Path) -> None:
    async def open_help(pilot: Any) -> None:
        await settle(pilot)
        await pilot.press("question_mark")
        await settle(pilot)

    assert snap_compare(_app(demo_db), terminal_size=(100, 40), run_before=open_help)
