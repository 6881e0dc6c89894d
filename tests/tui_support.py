"""Helpers for the review app's tests: small stores with known content, settling the app."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from auditor.analysis import ensure_map
from auditor.model import ResponseIn, Role, SampleIn
from auditor.scorers.annotations import score_annotations
from store import Store

HOSTILE_PROMPT = (
    "[bold]not bold[/bold] [/INST] [link=http://x]y[/link] \x1b[31mRED\x1b[0m"
    " bell\x07 \x1b]0;stolen title\x07 end\rover"
)
BIG = ("All work and no play [red]makes[/red] Jack a dull boy. " * 2000)[:100_000]


def pair(row: int, prompt: str, chosen: str, rejected: str, rc: float, rr: float) -> SampleIn:
    """A labelled pair whose ratings make a margin of ``rc - rr``."""
    return SampleIn(
        row=row,
        conversation=[{"role": "user", "content": prompt}],
        responses=[
            ResponseIn(chosen, Role.CHOSEN, model="model-a", rating=rc),
            ResponseIn(rejected, Role.REJECTED, model="model-b", rating=rr),
        ],
        record=json.dumps({"row": row}),
    )


def build_pairs(path: Path, n: int = 60, *, hostile: bool = False) -> Store:
    """A scored store of ``n`` pairs with spread ratings, some reversed (negative margins)."""
    store = Store(path)
    samples = []
    for i in range(n):
        rc = 1 + (i * 7) % 10
        rr = 1 + (i * 3) % 10
        samples.append(
            pair(i, f"Question number {i}?", f"Answer {i} one", f"Answer {i} two", rc, rr)
        )
    if hostile:
        samples.append(pair(n, HOSTILE_PROMPT, BIG, "", 0.0, 19.0))
        samples.append(
            pair(
                n + 1,
                "[/INST] \x1b[2J\x1b[H clear?",
                "\x1b[1mbold?\x1b[0m [i]x[/i]",
                "ok",
                0.0,
                20.0,
            )
        )
    with store.transaction():
        ds = store.add_dataset(
            name="pairs", source_path="(test)", format="test", content_hash=f"test-{path}"
        )
        store.add_samples(ds, samples)
    score_annotations(store)
    ensure_map(store, store.find_scorer(None).id)
    return store


async def settle(pilot: Any, rounds: int = 6) -> None:
    """Wait until the app's workers are done and their messages handled."""
    for _ in range(rounds):
        await pilot.app.wait_for_writes()
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()
