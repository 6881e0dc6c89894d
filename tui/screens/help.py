"""Every key binding of the app, by screen, with its description and id."""

from __future__ import annotations

from typing import Any, ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Header, Static


def binding_groups() -> list[tuple[str, list[Binding]]]:
    """(where, bindings) for the app and each screen and dialog."""
    from tui.app import ReviewApp
    from tui.dialogs.best import BestDialog
    from tui.dialogs.export import ExportDialog
    from tui.dialogs.note import NoteDialog
    from tui.screens.map import MapScreen
    from tui.screens.queue import QueueScreen
    from tui.screens.sample import SampleScreen

    groups: list[tuple[str, Any]] = [
        ("Everywhere", ReviewApp),
        ("Map", MapScreen),
        ("Queue", QueueScreen),
        ("Sample", SampleScreen),
        ("Help", HelpScreen),
        ("Note dialog", NoteDialog),
        ("Best-response dialog", BestDialog),
        ("Export dialog", ExportDialog),
    ]
    return [(name, [b for b in cls.BINDINGS if isinstance(b, Binding)]) for name, cls in groups]


class HelpScreen(Screen[None]):
    """The key bindings, read from the screens themselves so the list cannot drift."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "close", "Back", id="help.back"),
    ]
    DEFAULT_CSS = """
    #help-text { padding: 0 1; }
    """

    def compose(self) -> ComposeResult:
        yield Header()
        with VerticalScroll():
            yield Static(self.help_text(), id="help-text", markup=False)
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(VerticalScroll).focus()

    def help_text(self) -> Text:
        """One line a binding: keys, what it does, its id for AUDITOR_KEYMAP."""
        keymap = getattr(self.app, "_keymap", {}) or {}
        text = Text()
        for where, bindings in binding_groups():
            text.append(f"{where}\n", style="bold underline")
            for b in bindings:
                keys = keymap.get(b.id, b.key) if b.id else b.key
                shown = ", ".join(self.app.get_key_display(Binding(k, "")) for k in keys.split(","))
                text.append(f"  {shown:<22}", style="bold")
                text.append(f"{b.description:<28}")
                text.append(f"{b.id or ''}\n", style="dim")
            text.append("\n")
        text.append(
            "Remap keys with AUDITOR_KEYMAP, e.g. AUDITOR_KEYMAP='sample.flip=F,sample.drop=x'.\n"
            "Colours follow the terminal; NO_COLOR=1 turns them off (marks stay readable).",
            style="italic",
        )
        return text

    def action_close(self) -> None:
        self.app.pop_screen()
