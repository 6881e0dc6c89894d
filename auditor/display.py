"""Dataset text made safe to show in a terminal, and word-level diffs between responses."""

from __future__ import annotations

import re
from difflib import SequenceMatcher

# ESC-introduced sequences: CSI (colours, cursor moves), OSC (titles, hyperlinks),
# DCS/SOS/PM/APC strings, and two-character escapes; then lone C0/C1 controls.
_ESCAPES = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]"
    r"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?"
    r"|\x1b[PX^_][^\x1b]*(?:\x1b\\)?"
    r"|\x1b[ -/]*[0-~]?"
    r"|\x9b[0-?]*[ -/]*[@-~]"
)
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069]")

DIFF_WORD_LIMIT = 6000
"""Beyond this many words on a side, a word diff is not attempted (it grows quadratically)."""


def clean_text(text: str | None, *, tab: str = "    ") -> str:
    """``text`` with terminal escape sequences and control characters removed.

    Newlines stay; tabs become spaces; carriage returns become newlines so a line cannot
    overwrite another. Bidirectional overrides and zero-width characters go too, since
    they can make text read differently from what it is.
    """
    if not text:
        return ""
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\t", tab)
    text = _ESCAPES.sub("", text)
    return _CONTROLS.sub("", text)


def one_line(text: str | None, width: int) -> str:
    """The cleaned text on one line, cut to ``width`` characters with an ellipsis."""
    flat = " ".join(clean_text(text).split())
    return flat if len(flat) <= width else flat[: max(0, width - 1)] + "…"


def word_diff(a: str, b: str) -> tuple[list[tuple[str, bool]], list[tuple[str, bool]]] | None:
    """Each side as (chunk, changed) pieces, diffed word by word; None when too long.

    Whitespace is kept as it was, so the pieces joined give back the input.
    """
    ta, tb = re.findall(r"\s+|\S+", a), re.findall(r"\s+|\S+", b)
    wa = [(i, t) for i, t in enumerate(ta) if not t.isspace()]
    wb = [(i, t) for i, t in enumerate(tb) if not t.isspace()]
    if len(wa) > DIFF_WORD_LIMIT or len(wb) > DIFF_WORD_LIMIT:
        return None
    changed_a: set[int] = set()
    changed_b: set[int] = set()
    matcher = SequenceMatcher(None, [t for _, t in wa], [t for _, t in wb], autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag != "equal":
            changed_a.update(wa[k][0] for k in range(i1, i2))
            changed_b.update(wb[k][0] for k in range(j1, j2))
    return _merge(ta, changed_a), _merge(tb, changed_b)


def _merge(tokens: list[str], changed: set[int]) -> list[tuple[str, bool]]:
    out: list[tuple[str, bool]] = []
    for i, tok in enumerate(tokens):
        flag = i in changed
        if out and out[-1][1] == flag:
            out[-1] = (out[-1][0] + tok, flag)
        else:
            out.append((tok, flag))
    return out
