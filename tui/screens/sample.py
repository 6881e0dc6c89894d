"""One sample: the conversation, then each response with its scores; decisions by key."""

from __future__ import annotations

import threading
import time
from typing import Any, ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult, RenderResult
from textual.binding import Binding, BindingType
from textual.containers import Container, VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Header, Static

from auditor.display import word_diff
from auditor.model import Action
from auditor.review import QueueWalker, SampleView, load_sample
from store.review import SORTS, Queue
from tui.messages import SampleLoaded
from tui.widgets.response import ResponseCard
from tui.widgets.safe import diff_text, safe_text

WORD = {"flip": "FLIPPED", "drop": "DROPPED", "keep": "KEPT"}


class PaintedStatic(Static):
    """A Static that notes when it was last painted (perf_counter), for benchmarks."""

    painted_at = 0.0

    def render(self) -> RenderResult:
        self.painted_at = time.perf_counter()
        return super().render()


def _fmt(x: Any) -> str:
    return "—" if x is None else f"{x:.4g}" if isinstance(x, float) else str(x)


class SampleScreen(Screen[int | None]):
    """A sample of a queue; dismisses with the sample the reviewer ended on."""

    CSS_PATH = "sample.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Queue", id="sample.back"),
        Binding("n,right", "next", "Next", id="sample.next"),
        Binding("p,left", "previous", "Prev", id="sample.previous"),
        Binding("N", "next_undecided", "Next undecided", id="sample.next_undecided"),
        Binding("f", "flip", "Flip", id="sample.flip"),
        Binding("d", "drop", "Drop", id="sample.drop"),
        Binding("k", "keep", "Keep", id="sample.keep"),
        Binding("m", "note", "Note", id="sample.note"),
        Binding("w", "toggle_diff", "Diff", id="sample.diff"),
        *[
            Binding(
                str(i + 1),
                f"best({i})",
                f"Mark response {i + 1} best",
                id=f"sample.best{i + 1}",
                show=False,
            )
            for i in range(9)
        ],
    ]

    def __init__(self, queue: Queue, sample_id: int) -> None:
        super().__init__()
        self.queue = queue
        self.current = sample_id
        self.view: SampleView | None = None
        self.diff = False
        self._lock = threading.Lock()
        self._walker: QueueWalker | None = None
        self.shown_at = 0.0
        """When the latest sample was drawn (perf_counter), for benchmarks."""

    def compose(self) -> ComposeResult:
        yield Header()
        yield PaintedStatic(id="sample-meta", markup=False)
        with VerticalScroll(id="sample-scroll"):
            yield Static(id="conversation", markup=False)
            yield Container(id="responses")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#sample-scroll").focus()
        self.step("here")

    # -- loading -----------------------------------------------------------------------

    # not exclusive: a cancelled step would be a lost key press; every press moves once,
    # in order (the lock), and only the latest position is drawn
    @work(thread=True, group="sample", exit_on_error=False)
    def step(self, where: str) -> None:
        """Move (here, next, previous, undecided) and load the sample found there."""
        app: Any = self.app
        with self._lock:
            if self._walker is None:
                self._walker = QueueWalker(app.store, self.queue)
            walker = self._walker
            row = None
            if where == "next":
                row = walker.next(self.current)
            elif where == "previous":
                row = walker.previous(self.current)
            elif where == "undecided":
                row = walker.next_undecided(self.current)
            if where != "here" and row is None:
                end = "start" if where == "previous" else "end"
                self.app.call_from_thread(self.notify, f"At the {end} of the queue.", timeout=2)
                return
            if row is not None:
                self.current = row.sample_id
            sample_id = self.current
        view = load_sample(app.store, app.scorer.id, sample_id)
        if view is None or self.current != sample_id:
            return
        view.position = row
        if self.diff:
            view.extra["diff"] = self._diffs(view)
        app.store.save_review_cursor(app.reviewer, self.queue.as_dict(), sample_id)
        self.post_message(SampleLoaded(view))

    @work(thread=True, exclusive=True, group="sample-diff", exit_on_error=False)
    def load_diff(self) -> None:
        """Compute the word diff of the sample on screen."""
        view = self.view
        if view is None:
            return
        view.extra["diff"] = self._diffs(view)
        self.post_message(SampleLoaded(view))

    @staticmethod
    def _diffs(view: SampleView) -> dict[int, Any] | None:
        """Each response diffed against the other of a pair, or against the top-scored one."""
        responses = view.sample["responses"]
        if len(responses) < 2:
            return {}
        if len(responses) == 2:
            pair = word_diff(responses[0]["text"], responses[1]["text"])
            return None if pair is None else {0: pair[0], 1: pair[1]}
        scored = [(view.scores.get(i, {}).get("value"), i) for i in range(len(responses))]
        top = max((s for s in scored if s[0] is not None), default=(None, 0))[1]
        out: dict[int, Any] = {}
        for i, r in enumerate(responses):
            if i == top:
                continue
            pair = word_diff(responses[top]["text"], r["text"])
            if pair is None:
                return None
            out[i] = pair[1]
        return out

    def on_sample_loaded(self, message: SampleLoaded) -> None:
        if message.view.sample_id != self.current:
            return
        self.view = message.view
        self.render_view(message.view)
        self.shown_at = time.perf_counter()

    # -- drawing -----------------------------------------------------------------------

    def render_view(self, view: SampleView) -> None:
        """Fill the meta line, the conversation and the response cards."""
        s, st, dec = view.sample, view.stat or {}, view.decision
        meta = Text()
        meta.append(f"Sample {s['id']}", style="bold")
        meta.append(f"  {s['kind']}  ·  row {s['row']}")
        if s.get("source"):
            meta.append("  ·  ")
            meta.append_text(safe_text(str(s["source"])[:40]))
        meta.append(f"  ·  {self.queue.title} by {SORTS[self.queue.sort][2]}")
        if self.diff:
            meta.append("  ·  word diff", style="bold")
        meta.append(
            f"\nregion {st.get('region') or '—'}  mean {_fmt(st.get('mean'))}"
            f"  σ² {_fmt(st.get('var'))}  margin {_fmt(st.get('margin'))}  τ {_fmt(st.get('tau'))}"
        )
        meta.append("\ndecision: ")
        if dec.action:
            meta.append(WORD.get(dec.action, dec.action), style="bold reverse")
            if dec.best_idx is not None:
                meta.append(f" (misannotated: best is response {dec.best_idx + 1})")
            meta.append(f" by {dec.reviewer} at {(dec.updated_at or '')[:19]}")
        else:
            meta.append("none yet", style="italic")
        if dec.note:
            meta.append("  note: ")
            meta.append_text(safe_text(dec.note, "italic"))
        self.query_one("#sample-meta", Static).update(meta)

        convo = Text()
        for turn in s["conversation"]:
            convo.append(f"{str(turn.get('role', '?')).upper()}\n", style="bold")
            convo.append_text(safe_text(str(turn.get("content", ""))))
            convo.append("\n\n")
        convo.rstrip()
        self.query_one("#conversation", Static).update(convo)

        container = self.query_one("#responses", Container)
        responses = s["responses"]
        cards = list(container.query(ResponseCard))
        if len(cards) < len(responses):
            new = [ResponseCard() for _ in range(len(responses) - len(cards))]
            container.mount_all(new)
            cards.extend(new)
        container.set_class(len(responses) > 2, "-many")
        diffs = view.extra.get("diff") if self.diff else None
        for i, card in enumerate(cards):
            card.display = i < len(responses)
            if i < len(responses):
                self._fill_card(card, i, responses[i], view, diffs)
        if self.diff and diffs is None and "diff" in view.extra:
            self.notify("Too long for a word diff.", severity="warning", timeout=3)

    def _fill_card(
        self, card: ResponseCard, i: int, r: dict[str, Any], view: SampleView, diffs: Any
    ) -> None:
        dec = view.decision
        flipped = dec.action == Action.FLIP.value and view.sample["kind"] == "pair"
        title = Text(f"Response {i + 1}")
        role = r["role"]
        if role in ("chosen", "rejected"):
            title.append("  ·  ")
            title.append(role.upper(), style="bold")
            if flipped:
                title.append(f" → {'REJECTED' if role == 'chosen' else 'CHOSEN'} (flipped)")
        best = dec.action == Action.FLIP.value and dec.best_idx == i
        if best:
            title.append("  ·  ★ best (reviewer)")
        card.set_class(best, "-best")
        if r.get("model"):
            title.append("  ·  ")
            title.append_text(safe_text(str(r["model"])))
        score = view.scores.get(i)
        title.append("\nscore ")
        if score is None:
            title.append("—")
        elif score["status"] == "ok":
            title.append(_fmt(score["value"]), style="bold")
        else:
            title.append(str(score["status"]), style="italic")
        if r.get("rating") is not None:
            title.append(f"  ·  rating {_fmt(r['rating'])}")
        aspects = [(k, v) for k, v in (r.get("ratings") or {}).items() if k != "rating"]
        if aspects:
            title.append("  ·  ")
            title.append_text(safe_text(", ".join(f"{k} {v}" for k, v in aspects[:6])))
        rationale = (score or {}).get("rationale") or (score or {}).get("error")
        if diffs and i in diffs:
            style = "green" if (len(diffs) > 2 or i == 1) else "red"
            body = diff_text(diffs[i], style)
        elif r["text"]:
            body = safe_text(r["text"])
        else:
            body = Text("(empty response)", style="italic")
        card.show(title, safe_text(rationale) if rationale else None, body)

    # -- actions -----------------------------------------------------------------------

    def action_back(self) -> None:
        self.dismiss(self.current)

    def action_next(self) -> None:
        self.step("next")

    def action_previous(self) -> None:
        self.step("previous")

    def action_next_undecided(self) -> None:
        self.step("undecided")

    def action_toggle_diff(self) -> None:
        self.diff = not self.diff
        if self.diff:
            self.load_diff()
        elif self.view is not None:
            self.render_view(self.view)

    def action_flip(self) -> None:
        view = self.view
        if view is None:
            return
        if view.sample["kind"] == "pair" or len(view.sample["responses"]) <= 2:
            self.decide(view.sample_id, Action.FLIP)
            return
        from tui.dialogs.best import BestDialog

        texts = []
        for r in view.sample["responses"]:
            # model, score and rating first: responses often open with the same words
            value = view.scores.get(r["idx"], {}).get("value")
            head = [
                str(r.get("model") or ""),
                f"score {value:.3g}" if value is not None else "",
                f"rating {r['rating']:.3g}" if r.get("rating") is not None else "",
            ]
            texts.append(" · ".join([*(h for h in head if h), r["text"]]))
        sample_id = view.sample_id

        def chosen(idx: int | None) -> None:
            if idx is not None:
                self.decide(sample_id, Action.FLIP, best_idx=idx)

        self.app.push_screen(BestDialog(texts), chosen)

    def action_best(self, i: int) -> None:
        if self.view is not None and i < len(self.view.sample["responses"]):
            self.decide(self.view.sample_id, Action.FLIP, best_idx=i)

    def action_drop(self) -> None:
        if self.view is not None:
            self.decide(self.view.sample_id, Action.DROP)

    def action_keep(self) -> None:
        if self.view is not None:
            self.decide(self.view.sample_id, Action.KEEP)

    def action_note(self) -> None:
        from tui.dialogs.note import NoteDialog

        if self.view is None:
            return
        sample_id = self.view.sample_id

        def written(note: str | None) -> None:
            if note is not None:
                self.decide(sample_id, Action.NOTE, note=note or None)

        self.app.push_screen(NoteDialog(self.view.decision.note), written)

    def decide(
        self,
        sample_id: int,
        action: Action,
        best_idx: int | None = None,
        note: str | None = None,
    ) -> None:
        """Save a decision on the sample on screen at once, then redraw it."""
        app: Any = self.app

        def write() -> None:
            app.store.decide(sample_id, action, app.reviewer, best_idx=best_idx, note=note)
            app.store.save_review_cursor(app.reviewer, self.queue.as_dict(), sample_id)
            self.reload_decision(sample_id)

        app.submit_write(write)

    def reload_decision(self, sample_id: int) -> None:
        """Re-read a sample's decision (from a worker thread) and redraw if it is on screen."""
        app: Any = self.app
        view = self.view
        if view is None or view.sample_id != sample_id:
            return
        view.decision = app.store.decision(sample_id)
        with self._lock:
            if self._walker is not None:
                self._walker.refresh(sample_id)
        self.post_message(SampleLoaded(view))

    def decision_changed(self, sample_id: int) -> None:
        """An undo or redo touched a sample: show it if it is this one, else go to it."""
        if sample_id == self.current:
            self.refresh_decision(sample_id)
        else:
            self.current = sample_id
            self.step("here")

    @work(thread=True, exclusive=True, group="refresh", exit_on_error=False)
    def refresh_decision(self, sample_id: int) -> None:
        """Reload the decision after an undo or redo."""
        self.reload_decision(sample_id)
