"""Help lists every binding; notes and exports go through their dialogs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from rich.text import Text
from textual.widgets import Input, Static

from store import Store
from tests.tui_support import build_pairs, settle
from tui.app import ReviewApp, parse_keymap
from tui.screens.help import HelpScreen, binding_groups
from tui.screens.sample import SampleScreen


def test_every_binding_has_a_description_and_a_unique_id() -> None:
    ids = [b.id for _, bindings in binding_groups() for b in bindings]
    assert all(b.description for _, bindings in binding_groups() for b in bindings)
    assert all(ids) and len(ids) == len(set(ids))


def test_keymap_spec_is_parsed() -> None:
    assert parse_keymap("sample.flip=F, sample.drop=x;bad;=y") == {
        "sample.flip": "F",
        "sample.drop": "x",
    }


async def test_help_lists_remapped_keys(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUDITOR_KEYMAP", "sample.flip=F")
    db = tmp_path / "h.db"
    build_pairs(db, n=12).close()
    app = ReviewApp(db, reviewer="h", poll=False, resume=False)
    async with app.run_test(size=(100, 50)) as pilot:
        await settle(pilot)
        await pilot.press("question_mark")
        await settle(pilot)
        assert isinstance(app.screen, HelpScreen)
        content = app.screen.query_one("#help-text", Static).content
        assert isinstance(content, Text)
        line = next(ln for ln in content.plain.splitlines() if "sample.flip" in ln)
        assert line.split()[0] == "F"
        for _, bindings in binding_groups():
            for b in bindings:
                assert b.id in content.plain


async def test_note_is_saved_and_shown_literally(tmp_path: Path) -> None:
    db = tmp_path / "n.db"
    build_pairs(db, n=12).close()
    app = ReviewApp(db, reviewer="nina", poll=False, resume=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("a", "enter")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, SampleScreen)
        await pilot.press("m")
        await settle(pilot)
        await pilot.press(*"[b]typo?[/b]", "enter")
        await settle(pilot)
        meta = screen.query_one("#sample-meta", Static).content
        assert isinstance(meta, Text) and "note: [b]typo?[/b]" in meta.plain
        sample_id = screen.current
    with Store(db) as store:
        state = store.decision(sample_id)
        assert state.note == "[b]typo?[/b]" and state.action is None


async def test_export_dialog_writes_the_paper_subset_through_the_engine(tmp_path: Path) -> None:
    db = tmp_path / "e.db"
    build_pairs(db, n=12).close()
    out = tmp_path / "clean.jsonl"
    app = ReviewApp(db, reviewer="x", poll=False, resume=False)
    async with app.run_test(size=(100, 40)) as pilot:
        await settle(pilot)
        await pilot.press("E")
        await settle(pilot)
        app.screen.query_one("#export-out", Input).value = str(out)
        await pilot.click("#export-paper")
        await pilot.click("#export-go")
        await app.workers.wait_for_complete()
        await settle(pilot)
    with Store(db) as store:
        scorer = store.find_scorer(None)
        high_avg = store.region_counts(scorer.id).get("HighAvg", 0)
    lines = out.read_text(encoding="utf-8").splitlines()
    assert high_avg > 0 and len(lines) == high_avg
    assert {"prompt", "chosen", "rejected"} <= set(json.loads(lines[0]))
    manifest = json.loads((tmp_path / "clean.jsonl.manifest.json").read_text())
    assert manifest["selection"]["paper_subset"] is True


async def test_export_dialog_reports_engine_errors(tmp_path: Path) -> None:
    db = tmp_path / "e.db"
    build_pairs(db, n=12).close()
    app = ReviewApp(db, reviewer="x", poll=False, resume=False)
    async with app.run_test(size=(100, 40)) as pilot:
        await settle(pilot)
        await pilot.press("E")
        await settle(pilot)
        app.screen.query_one("#export-out", Input).value = str(tmp_path / "no" / "such" / "o.jsonl")
        await pilot.press("enter")
        await app.workers.wait_for_complete()
        await settle(pilot)
        messages = [n.message for n in app._notifications]
        assert any("export failed" in m for m in messages)
    assert not (tmp_path / "no").exists()
