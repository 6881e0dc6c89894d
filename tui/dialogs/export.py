"""Export from inside the app: the export command's main choices, handed to the engine."""

from __future__ import annotations

from typing import Any, ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Select

from tui.widgets.tick import Tick

FORMATS = ["trl", "trl-chat", "original", "pairs-all", "binarized"]
REGIONS = ["HighAvg", "LowAvg", "HighVar"]


class ExportDialog(ModalScreen[dict[str, Any] | None]):
    """Asks where and what to export; dismisses with the options, or None."""

    CSS_PATH = "dialogs.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", id="export.cancel"),
    ]

    def compose(self) -> ComposeResult:
        with VerticalScroll(classes="dialog"):
            yield Label("Export a cleaned dataset (Enter in the path exports, Esc cancels)")
            yield Input(placeholder="output file, e.g. clean.jsonl", id="export-out")
            yield Select(
                [(f, f) for f in FORMATS], value="trl", allow_blank=False, id="export-format"
            )
            yield Tick("paper subset (HighAvg third)", id="export-paper")
            with Horizontal():
                for r in REGIONS:
                    yield Tick(r, id=f"export-{r}")
            with Horizontal():
                yield Tick("apply decisions", value=True, id="export-apply")
                yield Tick("reviewed only", id="export-reviewed")
            yield Button("Export", variant="primary", id="export-go")

    def on_mount(self) -> None:
        self.query_one("#export-out", Input).focus()

    def choice(self) -> dict[str, Any] | None:
        """The options as the export engine takes them, or None without an output path."""
        out = self.query_one("#export-out", Input).value.strip()
        if not out:
            self.notify("Name an output file first.", severity="warning")
            return None
        return {
            "out": out,
            "format": str(self.query_one("#export-format", Select).value),
            "paper_subset": self.query_one("#export-paper", Tick).value,
            "regions": [r for r in REGIONS if self.query_one(f"#export-{r}", Tick).value],
            "apply_decisions": self.query_one("#export-apply", Tick).value,
            "reviewed_only": self.query_one("#export-reviewed", Tick).value,
        }

    def _submit(self) -> None:
        chosen = self.choice()
        if chosen is not None:
            self.dismiss(chosen)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self._submit()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self._submit()

    def action_cancel(self) -> None:
        self.dismiss(None)
