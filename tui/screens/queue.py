"""A review queue: one page of a region or of the suspects, sorted and filtered, by keyset."""

from __future__ import annotations

from typing import Any, ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Input, Static

from auditor.display import one_line
from store.review import SORTS, STATUSES, Queue
from tui.messages import QueuePage, QueueSize

PAGE = 100
"""Rows shown at once; the table never holds more than one page."""
CONTEXT = 5
"""Rows shown above a sample the reviewer comes back to."""

ACTION_MARK = {"flip": "⇄ flip", "drop": "✗ drop", "keep": "✓ keep"}


def _num(x: float | None) -> str:
    return "" if x is None else f"{x:.3f}"


class QueueScreen(Screen[None]):
    """The samples of one queue, a page at a time."""

    CSS_PATH = "queue.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Map", id="queue.back"),
        Binding("o", "cycle_sort", "Sort", id="queue.sort"),
        Binding("t", "cycle_status", "Status", id="queue.status"),
        Binding("D", "cycle_dataset", "Dataset", id="queue.dataset"),
        Binding("slash", "search", "Search", id="queue.search"),
        Binding("n,right", "next_page", "Next page", id="queue.next_page"),
        Binding("p,left", "previous_page", "Prev page", id="queue.previous_page"),
        Binding("home,g", "first_page", "First page", id="queue.first_page", show=False),
    ]

    def __init__(self, queue: Queue, *, focus_sample: int | None = None) -> None:
        super().__init__()
        self.queue = queue
        self.rows: list[Any] = []
        self.focus_sample = focus_sample
        self.datasets: list[tuple[int | None, str]] = [(None, "all datasets")]
        self.total: int | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(id="queue-status")
        yield Input(placeholder="search prompts, Enter to apply, Esc to cancel", id="search")
        yield DataTable(id="queue", cursor_type="row", zebra_stripes=True)
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one("#queue", DataTable)
        for label in ("id", "decision", "mean", "σ²", "margin", "τ", "prompt"):
            table.add_column(label, key=label)
        self.query_one("#search", Input).display = False
        self.load_datasets()
        self.reload(start_at=self.focus_sample)

    # -- loading -----------------------------------------------------------------------

    def reload(self, *, start_at: int | None = None) -> None:
        """Show the first page (or the page starting at a sample) and recount."""
        self.total = None
        self.load_page(after=None, backward=False, start_at=start_at)
        self.load_count()
        self.show_status()

    @work(thread=True, exclusive=True, group="queue-page", exit_on_error=False)
    def load_page(
        self,
        after: tuple[float, int] | None,
        backward: bool,
        start_at: int | None = None,
        select: int | None = None,
    ) -> None:
        """Fetch one page by keyset and post it."""
        app: Any = self.app
        store = app.store
        if start_at is not None:
            row = store.queue_row(self.queue, start_at)
            if row is not None:
                # a few rows before the sample too, so the reviewer sees where they are
                before = store.queue_page(
                    self.queue, after=row.cursor, limit=CONTEXT, backward=True
                )
                rows = before + store.queue_page(
                    self.queue, after=row.cursor, limit=PAGE - len(before), inclusive=True
                )
                self.post_message(QueuePage(self.queue, rows, select or start_at))
                return
        rows = store.queue_page(self.queue, after=after, limit=PAGE, backward=backward)
        self.post_message(QueuePage(self.queue, rows, select))

    @work(thread=True, exclusive=True, group="queue-count", exit_on_error=False)
    def load_count(self) -> None:
        """Count the queue (a scan on big databases, so apart from the page)."""
        app: Any = self.app
        self.post_message(QueueSize(self.queue, app.background.queue_count(self.queue)))

    @work(thread=True, exclusive=True, group="queue-datasets", exit_on_error=False)
    def load_datasets(self) -> None:
        """The datasets a reviewer can filter on."""
        app: Any = self.app
        found = [(int(d["id"]), str(d["name"])) for d in app.store.datasets()]
        self.app.call_from_thread(setattr, self, "datasets", [(None, "all datasets"), *found])

    def on_queue_page(self, message: QueuePage) -> None:
        if message.queue != self.queue:
            return
        if not message.rows and self.rows:
            self.notify("No more samples this way.", timeout=2)
            return
        self.rows = message.rows
        table = self.query_one("#queue", DataTable)
        table.clear()
        width = max(20, self.size.width - 52)
        for r in self.rows:
            table.add_row(
                str(r.sample_id),
                ACTION_MARK.get(r.action or "", "") + (" ✎" if r.note else ""),
                _num(r.mean),
                _num(r.var),
                _num(r.margin),
                _num(r.tau),
                Text(one_line(r.prompt, width)),
                key=str(r.sample_id),
            )
        if message.select is not None:
            for i, r in enumerate(self.rows):
                if r.sample_id == message.select:
                    table.move_cursor(row=i)
                    break
        table.focus()
        self.show_status()

    def on_queue_size(self, message: QueueSize) -> None:
        if message.queue == self.queue:
            self.total = message.count
            self.show_status()

    def show_status(self) -> None:
        """The queue's name, size, sort and filters, on one line."""
        q = self.queue
        line = Text()
        line.append(q.title, style="bold")
        line.append(f"  {self.total:,} samples" if self.total is not None else "  counting…")
        line.append(f"  ·  sort: {SORTS[q.sort][2]}  ·  status: {q.status}")
        name = next((n for i, n in self.datasets if i == q.dataset_id), None)
        if q.dataset_id is not None and name:
            line.append(f"  ·  dataset: {name}")
        if q.search:
            line.append("  ·  search: ")
            line.append(one_line(q.search, 30))
        if not self.rows and self.total == 0:
            line.append("\nNothing here with this sort and these filters")
            if q.sort in ("margin", "tau"):
                line.append(f" (samples without a {q.sort} are not listed)")
            line.append(".")
        self.query_one("#queue-status", Static).update(line)

    # -- actions -----------------------------------------------------------------------

    def _set_queue(self, queue: Queue) -> None:
        self.queue = queue
        self.rows = []
        self.reload()

    def action_back(self) -> None:
        search = self.query_one("#search", Input)
        if search.display:
            search.display = False
            self.query_one("#queue", DataTable).focus()
            return
        self.app.pop_screen()

    def action_cycle_sort(self) -> None:
        names = list(SORTS)
        self._set_queue(
            self.queue.with_(sort=names[(names.index(self.queue.sort) + 1) % len(names)])
        )

    def action_cycle_status(self) -> None:
        names = list(STATUSES)
        self._set_queue(
            self.queue.with_(status=names[(names.index(self.queue.status) + 1) % len(names)])
        )

    def action_cycle_dataset(self) -> None:
        ids = [i for i, _ in self.datasets]
        current = ids.index(self.queue.dataset_id) if self.queue.dataset_id in ids else 0
        self._set_queue(self.queue.with_(dataset_id=ids[(current + 1) % len(ids)]))

    def action_search(self) -> None:
        search = self.query_one("#search", Input)
        search.value = self.queue.search or ""
        search.display = True
        search.focus()

    @on(Input.Submitted, "#search")
    def _search_submitted(self, event: Input.Submitted) -> None:
        event.input.display = False
        self._set_queue(self.queue.with_(search=event.value.strip() or None))

    def action_next_page(self) -> None:
        if self.rows:
            self.load_page(after=self.rows[-1].cursor, backward=False)

    def action_previous_page(self) -> None:
        if self.rows:
            self.load_page(after=self.rows[0].cursor, backward=True)

    def action_first_page(self) -> None:
        self.load_page(after=None, backward=False)

    @on(DataTable.RowSelected, "#queue")
    def _open_sample(self, event: DataTable.RowSelected) -> None:
        from tui.screens.sample import SampleScreen

        self.app.push_screen(SampleScreen(self.queue, int(str(event.row_key.value))), self._back)

    def _back(self, sample_id: int | None) -> None:
        # come back to the page holding the sample the reviewer ended on
        self.load_page(after=None, backward=False, start_at=sample_id)
        self.load_count()

    def decision_changed(self, sample_id: int) -> None:
        """An undo or redo changed a sample: redraw the page."""
        if self.rows:
            self.load_page(
                after=None, backward=False, start_at=self.rows[0].sample_id, select=sample_id
            )
