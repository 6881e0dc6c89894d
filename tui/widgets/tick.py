"""A checkbox whose state reads without colour (NO_COLOR, 16-colour terminals)."""

from __future__ import annotations

from textual.content import Content
from textual.widgets import Checkbox


class Tick(Checkbox):
    """Shows X when on and a blank when off, instead of relying on the X's colour."""

    @property
    def _button(self) -> Content:
        self.BUTTON_INNER = "X" if self.value else " "
        return super()._button
