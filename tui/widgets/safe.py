"""Dataset text as Rich `Text`: never parsed as markup, stripped of terminal escapes."""

from __future__ import annotations

from rich.text import Text

from auditor.display import clean_text

CHANGED_STYLE = "bold underline"


def safe_text(text: str | None, style: str = "") -> Text:
    """Untrusted text, shown literally."""
    return Text(clean_text(text), style=style)


def diff_text(pieces: list[tuple[str, bool]], changed_style: str) -> Text:
    """A word diff side: changed words underlined (and coloured where colour exists)."""
    out = Text()
    for chunk, changed in pieces:
        out.append(clean_text(chunk), style=f"{CHANGED_STYLE} {changed_style}" if changed else "")
    return out
