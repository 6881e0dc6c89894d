"""Dataset text made safe for a terminal or a prompt: no escape sequences, no control codes."""

from __future__ import annotations

import re

# escape sequences first, so a colour code goes as a whole, not just its ESC byte
_CONTROL = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]"  # CSI: colours, cursor moves
    r"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?"  # OSC: window titles, hyperlinks
    r"|[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]"  # any other control character but \t \n \r
)


def strip_control(text: str) -> str:
    """``text`` without terminal escape sequences and control characters; tabs and newlines stay."""
    return _CONTROL.sub("", text)


def one_line(text: str | None, width: int = 70) -> str:
    """Dataset text made safe for one terminal line: control and escape sequences removed."""
    if not text:
        return ""
    flat = " ".join(_CONTROL.sub(" ", text).split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"
