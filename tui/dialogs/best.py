"""For a multi-response sample: which response is best."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Label, OptionList
from textual.widgets.option_list import Option

from auditor.display import one_line


class BestDialog(ModalScreen[int | None]):
    """Lists the responses; dismisses with the chosen position, or None."""

    CSS_PATH = "dialogs.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", id="best.cancel"),
        *[
            Binding(
                str(i + 1), f"pick({i})", f"Response {i + 1}", id=f"best.pick{i + 1}", show=False
            )
            for i in range(9)
        ],
    ]

    def __init__(self, responses: list[str]) -> None:
        super().__init__()
        self.responses = responses

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label("Which response is best? (1–9 or Enter; Esc cancels)")
            yield OptionList(
                *[
                    Option(Text(f"{i + 1}. {one_line(r, 70)}"), id=str(i))
                    for i, r in enumerate(self.responses)
                ],
                id="best-list",
            )

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(int(event.option.id or 0))

    def action_pick(self, i: int) -> None:
        if i < len(self.responses):
            self.dismiss(i)

    def action_cancel(self) -> None:
        self.dismiss(None)
