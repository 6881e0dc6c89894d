"""One response of a sample: its label, model, score(s), rationale and text."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Static


class ResponseCard(Vertical):
    """A response shown as a titled block; the screen fills it with `rich.text.Text`."""

    DEFAULT_CSS = """
    ResponseCard {
        height: auto;
        border: round $primary-darken-2;
        padding: 0 1;
    }
    ResponseCard.-best {
        border: double $success;
    }
    ResponseCard > .card-title {
        text-style: bold;
    }
    ResponseCard > .card-rationale {
        color: $text-muted;
        margin-bottom: 1;
    }
    """

    def __init__(self) -> None:
        super().__init__()
        self.title = Static(classes="card-title", markup=False)
        self.rationale = Static(classes="card-rationale", markup=False)
        self.body = Static(classes="card-body", markup=False)

    def compose(self) -> ComposeResult:
        yield self.title
        yield self.rationale
        yield self.body

    def show(self, title: Text, rationale: Text | None, body: Text) -> None:
        """Replace what the card shows."""
        self.title.update(title)
        self.rationale.display = rationale is not None
        self.rationale.update(rationale or Text())
        self.body.update(body)
