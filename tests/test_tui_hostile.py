"""Dataset text is shown literally: markup, escape sequences, huge and empty responses."""

from __future__ import annotations

from pathlib import Path

from rich.text import Text
from textual.widgets import Static

from auditor.display import clean_text, one_line, word_diff
from store import Store
from store.review import Queue
from tests.tui_support import BIG, HOSTILE_PROMPT, build_pairs, settle
from tui.app import ReviewApp
from tui.screens.sample import SampleScreen
from tui.widgets.response import ResponseCard


def test_clean_text_removes_escapes_and_controls_but_keeps_markup_literal() -> None:
    out = clean_text(HOSTILE_PROMPT)
    assert "\x1b" not in out and "\x07" not in out and "\r" not in out
    assert "[bold]not bold[/bold] [/INST]" in out
    assert "RED" in out and "stolen title" not in out  # an OSC title is dropped whole
    assert clean_text("a\tb\r\nc\u202eevil") == "a    b\ncevil"
    assert clean_text(None) == ""
    assert one_line("x\n\ny " * 20, 10) == "x y x y x…"


def test_word_diff_marks_changed_words_and_joins_back() -> None:
    a, b = "the cat sat on the mat", "the dog sat on a mat"
    result = word_diff(a, b)
    assert result is not None
    left, right = result
    assert "".join(t for t, _ in left) == a and "".join(t for t, _ in right) == b
    assert {t for t, changed in left if changed} == {"cat", "the"}
    assert {t for t, changed in right if changed} == {"dog", "a"}
    assert word_diff("w " * 7000, "v") is None


def _texts(screen: SampleScreen) -> list[Text]:
    out = []
    for static in screen.query(Static):
        content = static.content
        if isinstance(content, Text):
            out.append(content)
    return out


async def test_hostile_sample_renders_literally(tmp_path: Path) -> None:
    db = tmp_path / "h.db"
    store = build_pairs(db, hostile=True)
    hostile = store.sample_ids()[-2]
    scorer = store.find_scorer(None)
    row = store.queue_row(Queue(scorer.id, None, sort="evidence"), hostile)
    assert row is not None, "the reversed hostile pair should be a suspect"
    store.save_review_cursor("eve", Queue(scorer.id, None, sort="evidence").as_dict(), hostile)
    store.close()

    app = ReviewApp(db, reviewer="eve", poll=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, SampleScreen) and screen.current == hostile
        texts = _texts(screen)
        joined = "\n".join(t.plain for t in texts)
        assert "[bold]not bold[/bold] [/INST] [link=http://x]y[/link]" in joined
        assert "\x1b" not in joined and "\x07" not in joined
        assert "(empty response)" in joined
        cards = list(screen.query(ResponseCard))
        body = cards[0].body.content
        assert isinstance(body, Text) and body.plain == clean_text(BIG)
        assert "[red]makes[/red]" in body.plain and not body.spans
        # scrolling a 100 kB response, the word diff toggle and the next sample all work
        await pilot.press("end", "w")
        await settle(pilot)
        await pilot.press("w", "p")  # the other hostile pair ranks first (margin -20 < -19)
        await settle(pilot)
        assert screen.current == hostile + 1
        joined = "\n".join(t.plain for t in _texts(screen))
        assert "[i]x[/i]" in joined and "\x1b" not in joined
        # the whole screen renders: no exception, no escape leaked into the output
        svg = app.export_screenshot()
        assert "stolen title" not in svg


async def test_queue_shows_hostile_prompts_on_one_line(tmp_path: Path) -> None:
    db = tmp_path / "q.db"
    build_pairs(db, hostile=True).close()
    app = ReviewApp(db, reviewer="eve", poll=False)
    async with app.run_test(size=(120, 30)) as pilot:
        await settle(pilot)
        await pilot.press("s")
        await settle(pilot)
        table = app.screen.query_one("#queue")
        cells = [str(c) for c in table.get_column("prompt")]  # type: ignore[attr-defined]
        assert any("[bold]not bold[/bold]" in c for c in cells)
        assert all("\x1b" not in c and "\n" not in c for c in cells)


def test_store_keyset_pages_match_a_full_sort(tmp_path: Path) -> None:
    store = Store(tmp_path / "k.db")
    scorer_id = store.add_synthetic(2500)
    from auditor.analysis import ensure_map

    ensure_map(store, scorer_id)
    for region, sort in [("HighVar", "var"), ("LowAvg", "mean"), (None, "evidence")]:
        queue = Queue(scorer_id, region, sort=sort)
        seen, after = [], None
        while True:
            page = store.queue_page(queue, after=after, limit=97)
            if not page:
                break
            seen.extend(page)
            after = page[-1].cursor
        assert len(seen) == store.queue_count(queue) > 0
        keys = [(r.key, r.sample_id) for r in seen]
        expected = sorted(keys, reverse=(sort == "var"))
        assert keys == expected
        # backward from the end gives the same rows in the same order
        back, before = [], None
        before = (seen[-1].key, seen[-1].sample_id)
        back = store.queue_page(queue, after=before, limit=50, backward=True)
        assert [r.sample_id for r in back] == [r.sample_id for r in seen[-51:-1]]
    store.close()
