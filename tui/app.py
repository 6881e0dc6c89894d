"""The reviewer's terminal app: the map, review queues, decisions with undo."""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

from textual import work
from textual.app import App
from textual.binding import Binding, BindingType
from textual.worker import Worker, WorkerState

from store import Store, StoreError
from store.store import ScorerRow
from tui.messages import ScoringProgress, Undone

POLL_SECONDS = 1.0


class ReviewApp(App[None]):
    """Alignment Auditor's review app."""

    CSS_PATH = "app.tcss"
    TITLE = "Alignment Auditor"
    # screens get -wide past this width: the map beside its table, responses side by side
    HORIZONTAL_BREAKPOINTS = [  # noqa: RUF012 (Textual declares it an instance variable)
        (0, "-narrow"),
        (110, "-wide"),
    ]
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("question_mark,f1", "help", "Help", id="app.help"),
        Binding("q", "quit", "Quit", id="app.quit"),
        Binding("E", "export", "Export", id="app.export"),
        Binding("ctrl+z,u", "undo", "Undo", id="app.undo"),
        Binding("ctrl+y,U", "redo", "Redo", id="app.redo", show=False),
    ]

    def __init__(
        self,
        db_path: str | os.PathLike[str],
        *,
        scorer: str | None = None,
        reviewer: str | None = None,
        poll: bool = True,
        resume: bool = True,
    ) -> None:
        super().__init__()
        self.db_path = Path(db_path)
        self.store = Store(self.db_path)
        # a second connection for slow reads (counts, the map's freshness check, polling):
        # with its own lock they never hold up a sample load or a decision
        self.background = Store(self.db_path)
        self.scorer_ref = scorer
        self.scorer: ScorerRow | None = None
        self.reviewer = reviewer or os.environ.get("USER") or "reviewer"
        self.poll = poll
        self.resume = resume
        # decisions, undo and redo are written by one thread, in the order the keys came
        self._writes: queue.Queue[Callable[[], None] | None] = queue.Queue()
        self._writer = threading.Thread(target=self._write_loop, name="decisions", daemon=True)
        self._data_version: int | None = None
        self._scored: dict[int, int] | None = None
        keymap = parse_keymap(os.environ.get("AUDITOR_KEYMAP", ""))
        if keymap:
            self.set_keymap(keymap)

    def on_mount(self) -> None:
        from tui.screens.map import MapScreen

        self.sub_title = f"reviewer {self.reviewer}"
        self._writer.start()
        self.push_screen(MapScreen())
        if self.poll:
            self.poll_database()  # the starting point that progress is measured from
            self.set_interval(POLL_SECONDS, self.poll_database)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        # workers never crash the app (exit_on_error=False), so say what went wrong
        if event.state == WorkerState.ERROR:
            self.notify(f"{event.worker.name}: {event.worker.error}", severity="error", timeout=10)

    def on_unmount(self) -> None:
        if self._writer.is_alive():
            self._writes.put(None)
            self._writer.join(timeout=5)
        self.store.close()
        self.background.close()

    # -- decisions -----------------------------------------------------------------------

    def submit_write(self, job: Callable[[], None]) -> None:
        """Run a store write on the decisions thread, after every write submitted before."""
        self._writes.put(job)

    async def wait_for_writes(self) -> None:
        """Return once every submitted write is done (for tests and benchmarks)."""
        import asyncio

        await asyncio.to_thread(self._writes.join)

    def _write_loop(self) -> None:
        while True:
            job = self._writes.get()
            try:
                if job is None:
                    return
                job()
            except Exception as e:  # a failed write is reported, and the next still runs
                self.post_message(Undone(None, f"could not save: {e}"))
            finally:
                self._writes.task_done()

    def resolve_scorer(self) -> ScorerRow | None:
        """The scorer to show: the one asked for, else the newest with scores (thread-safe)."""
        try:
            if self.scorer_ref is None:
                # find_scorer(None) scans every score; this probes one index entry a scorer
                found = self.background.newest_scored_scorer()
                self.scorer = found or self.background.find_scorer(None)
            else:
                self.scorer = self.background.find_scorer(self.scorer_ref)
        except StoreError:
            self.scorer = None
        return self.scorer

    # -- scoring in another process ----------------------------------------------------

    @work(thread=True, exclusive=True, group="poll", exit_on_error=False)
    def poll_database(self) -> None:
        """Notice commits by other processes and report scoring progress."""
        version = self.background.data_version()
        if version == self._data_version:
            return
        first = self._data_version is None
        self._data_version = version
        scored = self.background.score_progress()
        before = self._scored or {}
        self._scored = scored
        if first:
            return
        active = {k: v for k, v in scored.items() if v != before.get(k)}
        if active:
            total = self.background.count_responses()
            names = {sc.id: sc.name for sc in self.background.scorers()}
            self.post_message(ScoringProgress(scored, total, active, names))

    def on_scoring_progress(self, message: ScoringProgress) -> None:
        parts = [
            f"scoring {message.names.get(sid, sid)}: {n:,}/{message.total:,}"
            for sid, n in message.active.items()
        ]
        self.sub_title = f"reviewer {self.reviewer} · " + "; ".join(parts)
        for screen in self.screen_stack:
            handler = getattr(screen, "show_progress", None)
            if handler is not None:
                handler(message)

    # -- actions available everywhere --------------------------------------------------

    def action_help(self) -> None:
        from tui.screens.help import HelpScreen

        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    def action_export(self) -> None:
        from tui.dialogs.export import ExportDialog

        self.push_screen(ExportDialog(), self._export_chosen)

    def _export_chosen(self, choice: dict[str, Any] | None) -> None:
        if choice:
            self.run_export(choice)

    @work(thread=True, exclusive=True, group="export", exit_on_error=False)
    def run_export(self, choice: dict[str, Any]) -> None:
        """Write an export through the export engine, then say what happened."""
        from auditor.export import ExportOptions, export

        options = ExportOptions(
            format=choice["format"],
            regions=tuple(choice["regions"]),
            paper_subset=choice["paper_subset"],
            apply_decisions=choice["apply_decisions"],
            reviewed_only=choice["reviewed_only"],
            scorer=self.scorer.config_hash if self.scorer is not None else None,
        )
        out = choice["out"]
        try:
            result = export(self.store, out, options)
        except Exception as e:  # the engine's own errors carry a message meant for users
            self.call_from_thread(self.notify, f"export failed: {e}", severity="error", timeout=10)
            return
        summary = getattr(result, "summary", None)
        text = summary() if callable(summary) else f"exported to {out}"
        self.call_from_thread(self.notify, str(text), timeout=8)

    def action_undo(self) -> None:
        self.submit_write(lambda: self._undo_redo(redo=False))

    def action_redo(self) -> None:
        self.submit_write(lambda: self._undo_redo(redo=True))

    def _undo_redo(self, redo: bool) -> None:
        sample_id = self.store.redo(self.reviewer) if redo else self.store.undo(self.reviewer)
        word = "redo" if redo else "undo"
        text = f"{word}: sample {sample_id}" if sample_id is not None else f"nothing to {word}"
        self.post_message(Undone(sample_id, text))

    def on_undone(self, message: Undone) -> None:
        if message.sample_id is None:
            self.notify(message.text, severity="warning")
            return
        self.notify(message.text)
        refresh = getattr(self.screen, "decision_changed", None)
        if refresh is not None:
            refresh(message.sample_id)


def parse_keymap(spec: str) -> dict[str, str]:
    """``"sample.flip=F,sample.drop=D"`` -> a Textual keymap (binding id -> keys)."""
    keymap = {}
    for part in spec.replace(";", ",").split(","):
        if "=" in part:
            binding_id, _, keys = part.partition("=")
            if binding_id.strip() and keys.strip():
                keymap[binding_id.strip()] = keys.strip()
    return keymap


def run_review(
    db_path: str | os.PathLike[str], scorer: str | None = None, reviewer: str | None = None
) -> None:
    """Open the review app on a database and return when the reviewer quits."""
    ReviewApp(db_path, scorer=scorer, reviewer=reviewer).run()
