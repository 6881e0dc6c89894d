"""A scoring run in another process: the app shows its progress and picks up the scores."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from textual.widgets import DataTable, Static

from auditor.cli import main
from auditor.model import ScoreIn
from auditor.scorers.annotations import score_annotations
from store import Store
from tests.tui_support import build_pairs, settle
from tui.app import ReviewApp
from tui.screens import map as map_screen


def _on_map(table: DataTable) -> int:
    return sum(
        int(str(table.get_row(r)[3]).replace(",", "")) for r in ("HighAvg", "LowAvg", "HighVar")
    )


async def test_scores_from_another_process_show_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(map_screen, "REMAP_SECONDS", 0.0)
    db = tmp_path / "p.db"
    store = build_pairs(db, n=40)
    later = store.scorer("later", "test", {"kind": "test", "v": 1})
    responses = store.pending_responses(later.id)
    first_half = [r for r in responses if r.sample_id <= 20]
    store.save_scores(
        later.id, [ScoreIn(r.response_id, float(r.idx + r.sample_id % 3)) for r in first_half]
    )
    store.close()

    app = ReviewApp(db, reviewer="pat")
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        assert app.scorer is not None and app.scorer.name == "later"
        table = app.screen.query_one("#regions", DataTable)
        assert _on_map(table) == 20

        # the other process: its own connection, committing as a scoring run would
        other = Store(db)
        rest = [r for r in responses if r.sample_id > 20]
        other.save_scores(
            later.id, [ScoreIn(r.response_id, float(r.idx * 2 + r.sample_id % 5)) for r in rest]
        )
        other.close()

        for _ in range(100):  # the app polls once a second
            await pilot.pause(0.05)
            if "scoring later" in app.sub_title and _on_map(table) == 40:
                break
        assert "scoring later: 80/80" in app.sub_title
        progress = app.screen.query_one("#map-progress", Static)
        assert progress.display and "later 80/80 (100%)" in str(progress.content)
        await settle(pilot)
        assert _on_map(table) == 40


async def test_map_appears_when_the_first_scores_arrive(tmp_path: Path) -> None:
    db = tmp_path / "z.db"
    store = build_pairs(db, n=30)
    store.conn.execute("DELETE FROM scores")
    store.conn.execute("DELETE FROM scorers")
    store.close()
    app = ReviewApp(db, reviewer="zoe")
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        status = app.screen.query_one("#map-status", Static)
        assert "No scores in this database yet" in str(status.content)
        other = Store(db)
        score_annotations(other)
        other.close()
        for _ in range(100):  # the app polls once a second
            await pilot.pause(0.05)
            if app.scorer is not None and "annotations" in str(status.content):
                break
        await settle(pilot)
        assert "scorer annotations" in str(status.content)
        assert _on_map(app.screen.query_one("#regions", DataTable)) == 30


def test_review_command_errors_are_clear(tmp_path: Path) -> None:
    runner = CliRunner()
    missing = runner.invoke(main, ["review", "--db", str(tmp_path / "none.db")])
    assert missing.exit_code != 0 and "no database here" in missing.output
    db = tmp_path / "x.db"
    build_pairs(db, n=5).close()
    wrong = runner.invoke(main, ["review", "--db", str(db), "--scorer", "nope"])
    assert wrong.exit_code == 1 and "no scorer named 'nope'" in wrong.output
    piped = runner.invoke(main, ["review", "--db", str(db)])
    assert piped.exit_code == 2 and "needs a terminal" in piped.output
    helped = runner.invoke(main, ["review", "--help"])
    assert helped.exit_code == 0 and "--reviewer" in helped.output and "flip" in helped.output
