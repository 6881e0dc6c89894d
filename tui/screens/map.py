"""The map screen: the scatter, the regions with their review counts, the scorer in use."""

from __future__ import annotations

import time
from typing import Any, ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Container
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Static

from tui.messages import MapLoaded, RegionsLoaded, ScoringProgress
from tui.widgets.scatter import REGION_STYLE, MapPlot

REMAP_SECONDS = 5.0
"""While scores arrive from another process, recompute the map at most this often."""


def _mark(region: str) -> Text:
    color, marker = REGION_STYLE.get(region, ("", ""))
    glyph = {"dot": "•", "+": "+", "x": "x"}.get(marker, "!")
    return Text(glyph, style=f"bold {color}")


class MapScreen(Screen[None]):
    """The Alignment Data Map of the current scorer and its review queues."""

    CSS_PATH = "map.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("a", "open_region('HighAvg')", "HighAvg", id="map.high_avg"),
        Binding("l", "open_region('LowAvg')", "LowAvg", id="map.low_avg"),
        Binding("v", "open_region('HighVar')", "HighVar", id="map.high_var"),
        Binding("s", "open_region('')", "Suspects", id="map.suspects"),
        Binding("r", "reload", "Reload", id="map.reload", show=False),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.thresholds: dict[str, Any] = {}
        self._last_map = 0.0
        self._resumed = False
        self.map_ready = False
        """True once a map has been plotted (benchmarks and tests wait on it)."""

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("Loading the map…", id="map-status")
        yield Static(id="map-progress")
        with Container(id="map-body"):
            yield MapPlot(id="map-plot")
            yield DataTable(id="regions", cursor_type="row", zebra_stripes=True)
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one("#regions", DataTable)
        # fixed widths: the table is refilled in place, and widths that follow the content
        # would shift under the reviewer's eyes
        for label, key, width in [
            ("key", "key", 3),
            ("", "mark", 1),
            ("region", "region", 8),
            ("samples", "count", 9),
            ("reviewed", "reviewed", 8),
            ("flipped", "flipped", 7),
            ("dropped", "dropped", 7),
        ]:
            table.add_column(label, key=key, width=width)
        self.query_one("#map-progress", Static).display = False
        self.load_map()

    @work(thread=True, exclusive=True, group="map", exit_on_error=False)
    def load_map(self) -> None:
        """Make sure the map is current, then post the points and the region counts."""
        from auditor.analysis import ensure_map

        app: Any = self.app
        scorer = app.resolve_scorer()
        if scorer is None:
            self.post_message(MapLoaded(None, {}, [], "no scores yet"))
            return
        self._last_map = time.monotonic()
        stored = app.background.map_run(scorer.id)
        if stored is not None:
            # paint the stored map at once; checking that it is current scans every score
            self.post_message(
                MapLoaded(scorer, stored["thresholds"], app.background.map_points(scorer.id))
            )
        thresholds = ensure_map(app.background, scorer.id)
        fresh = app.background.map_run(scorer.id)
        if stored is None or fresh is None or fresh["fingerprint"] != stored["fingerprint"]:
            self.post_message(MapLoaded(scorer, thresholds, app.background.map_points(scorer.id)))
        self.post_message(RegionsLoaded(app.background.region_table(scorer.id)))

    @work(thread=True, exclusive=True, group="regions", exit_on_error=False)
    def load_regions(self) -> None:
        """Recount reviewed, flipped and dropped samples per region."""
        app: Any = self.app
        if app.scorer is not None:
            self.post_message(RegionsLoaded(app.background.region_table(app.scorer.id)))

    def on_map_loaded(self, message: MapLoaded) -> None:
        status = self.query_one("#map-status", Static)
        if message.scorer is None:
            status.update(
                Text(
                    "No scores in this database yet. Run `auditor score --scorer annotations`"
                    " (or judge / reference); the map appears as scores arrive."
                )
            )
            return
        self.thresholds = message.thresholds
        sc = message.scorer
        t = message.thresholds
        line = Text()
        line.append("scorer ", style="dim")
        line.append(f"{sc.name} ({sc.kind}, {sc.config_hash})", style="bold")
        if isinstance(t.get("variance"), float | int) and isinstance(t.get("mean"), float | int):
            line.append(
                f"  ·  HighVar: σ² > {t['variance']:.4g}  ·  HighAvg: mean > {t['mean']:.4g}"
            )
        status.update(line)
        self.query_one(MapPlot).show_map(message.points, message.thresholds)
        self.map_ready = True
        self.maybe_resume()

    def on_regions_loaded(self, message: RegionsLoaded) -> None:
        table = self.query_one("#regions", DataTable)
        keys = {"HighAvg": "a", "LowAvg": "l", "HighVar": "v", "Suspects": "s"}
        cursor = table.cursor_row
        table.clear()
        for row in message.rows:
            table.add_row(
                keys.get(row.region, ""),
                _mark(row.region),
                row.region,
                Text(f"{row.count:,}", justify="right"),
                Text(f"{row.reviewed:,}", justify="right"),
                Text(f"{row.flipped:,}", justify="right"),
                Text(f"{row.dropped:,}", justify="right"),
                key=row.region,
            )
        if message.rows:
            table.move_cursor(row=min(cursor, len(message.rows) - 1))

    def on_screen_resume(self) -> None:
        if self.map_ready:  # back from a queue: decisions may have changed the counts
            self.load_regions()

    def decision_changed(self, sample_id: int) -> None:
        """An undo or redo from the map: recount the regions."""
        self.load_regions()

    def show_progress(self, message: ScoringProgress) -> None:
        """Another process is scoring: pick up the new scores now and then."""
        app: Any = self.app
        line = Text("scoring in another process: ", style="bold")
        for sid, n in message.active.items():
            share = n / message.total if message.total else 0.0
            line.append(f"{message.names.get(sid, sid)} {n:,}/{message.total:,} ({share:.0%})  ")
        progress = self.query_one("#map-progress", Static)
        progress.update(line)
        progress.display = True
        moved = app.scorer is None or app.scorer.id in message.active
        if moved and time.monotonic() - self._last_map >= REMAP_SECONDS:
            self.load_map()

    @on(DataTable.RowSelected, "#regions")
    def _row_selected(self, event: DataTable.RowSelected) -> None:
        region = str(event.row_key.value)
        self.action_open_region("" if region == "Suspects" else region)

    def action_open_region(self, region: str) -> None:
        from store.review import Queue
        from tui.screens.queue import QueueScreen

        app: Any = self.app
        if app.scorer is None:
            self.notify("No map yet: score the data first.", severity="warning")
            return
        sort = "mean" if region else "evidence"
        self.app.push_screen(QueueScreen(Queue(app.scorer.id, region or None, sort=sort)))

    def action_reload(self) -> None:
        self.load_map()

    def maybe_resume(self) -> None:
        """Once, on start: reopen the queue and sample the reviewer was last on."""
        app: Any = self.app
        if self._resumed or not app.resume:
            return
        self._resumed = True
        self.resume_position()

    @work(thread=True, exclusive=True, group="resume", exit_on_error=False)
    def resume_position(self) -> None:
        """Find where this reviewer stopped and reopen it."""
        from store.review import Queue

        app: Any = self.app
        saved = app.store.review_cursor(app.reviewer)
        if saved is None or app.scorer is None:
            return
        queue_dict, sample_id = saved
        if queue_dict.get("scorer_id") != app.scorer.id:
            return
        queue = Queue.from_dict(queue_dict)
        self.app.call_from_thread(self._open_at, queue, sample_id)

    def _open_at(self, queue: Any, sample_id: int) -> None:
        from tui.screens.queue import QueueScreen
        from tui.screens.sample import SampleScreen

        if self.app.screen is not self:
            return
        self.app.push_screen(QueueScreen(queue, focus_sample=sample_id))
        self.app.push_screen(SampleScreen(queue, sample_id))
