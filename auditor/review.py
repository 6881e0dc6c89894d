"""The review loop without a screen: walk a queue, load what a reviewer sees, decide.

Used by the terminal app from worker threads; usable from a script too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from store import Store
    from store.review import Queue, QueueRow
    from store.store import DecisionState

WINDOW = 1000
"""Queue rows a walker keeps around the current one; more are fetched by keyset."""


@dataclass(slots=True)
class SampleView:
    """Everything the sample screen shows about one sample."""

    sample: dict[str, Any]
    scores: dict[int, dict[str, Any]]
    stat: dict[str, Any] | None
    decision: DecisionState
    position: QueueRow | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def sample_id(self) -> int:
        """The sample's id."""
        return int(self.sample["id"])


def load_sample(store: Store, scorer_id: int, sample_id: int) -> SampleView | None:
    """A sample with its responses, this scorer's scores and stats, and its decision."""
    sample = store.sample(sample_id)
    if sample is None:
        return None
    return SampleView(
        sample=sample,
        scores=store.response_scores(scorer_id, sample_id),
        stat=store.sample_stat(scorer_id, sample_id),
        decision=store.decision(sample_id),
    )


class QueueWalker:
    """Moves through a review queue one sample at a time, paging by keyset.

    Keeps a window of rows so that next and previous usually cost no query.
    """

    def __init__(self, store: Store, queue: Queue, *, page: int = 200) -> None:
        self.store = store
        self.queue = queue
        self.page = page
        self.rows: list[QueueRow] = []

    def _index(self, sample_id: int) -> int | None:
        for i, row in enumerate(self.rows):
            if row.sample_id == sample_id:
                return i
        return None

    def start(self, sample_id: int | None = None) -> QueueRow | None:
        """The queue's first row, or the row of ``sample_id`` (the first after it if filtered)."""
        self.rows = []
        after = None
        if sample_id is not None:
            row = self.store.queue_row(self.queue, sample_id)
            if row is not None:
                after = row.cursor
        self.rows = self.store.queue_page(self.queue, after=after, limit=self.page, inclusive=True)
        return self.rows[0] if self.rows else None

    def next(self, sample_id: int) -> QueueRow | None:
        """The row after ``sample_id``, or None at the end of the queue."""
        i = self._ensure(sample_id)
        if i is None:
            return None
        if i + 1 >= len(self.rows):
            more = self.store.queue_page(self.queue, after=self.rows[-1].cursor, limit=self.page)
            if not more:
                return None
            self.rows.extend(more)
            if len(self.rows) > WINDOW:
                del self.rows[: len(self.rows) - WINDOW]
            i = self._index(sample_id)
            assert i is not None
        return self.rows[i + 1]

    def previous(self, sample_id: int) -> QueueRow | None:
        """The row before ``sample_id``, or None at the start of the queue."""
        i = self._ensure(sample_id)
        if i is None:
            return None
        if i == 0:
            more = self.store.queue_page(
                self.queue, after=self.rows[0].cursor, limit=self.page, backward=True
            )
            if not more:
                return None
            self.rows[:0] = more
            if len(self.rows) > WINDOW:
                del self.rows[WINDOW:]
            i = len(more)
        return self.rows[i - 1]

    def next_undecided(self, sample_id: int) -> QueueRow | None:
        """The first row after ``sample_id`` with no decision yet (asked of the store)."""
        i = self._ensure(sample_id)
        cursor = self.rows[i].cursor if i is not None else None
        found = self.store.queue_page(self.queue.with_(status="undecided"), after=cursor, limit=1)
        if not found:
            return None
        self.start(found[0].sample_id)
        return self.rows[0] if self.rows else found[0]

    def refresh(self, sample_id: int) -> None:
        """Reload one row (after a decision changed it)."""
        i = self._index(sample_id)
        row = self.store.queue_row(self.queue, sample_id)
        if i is not None and row is not None:
            self.rows[i] = row

    def _ensure(self, sample_id: int) -> int | None:
        i = self._index(sample_id)
        if i is None:
            row = self.store.queue_row(self.queue, sample_id)
            if row is None:
                return None
            self.rows = [row]
            i = 0
        return i
