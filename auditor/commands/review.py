"""`auditor review`."""

from __future__ import annotations

import os

import click

from auditor.cli import db_option, fail, open_store


@click.command("review")
@db_option
@click.option(
    "--scorer",
    default=None,
    help="Scorer name, config hash or id whose map to review (default: the newest with scores).",
)
@click.option(
    "--reviewer",
    default=None,
    help="Name recorded with each decision (default: $USER).",
)
def command(db_path: str | None, scorer: str | None, reviewer: str | None) -> None:
    """Open the terminal review app: the map, review queues, decisions with undo.

    \b
    Map:    a HighAvg, l LowAvg, v HighVar, s suspects (or Enter on a row).
    Queue:  Enter opens a sample; o sort, t status, D dataset, / search.
    Sample: f flip, d drop, k keep, m note, n/p next/previous, N next undecided,
            w word diff, u undo, U redo, E export, ? every key, q quit.

    Decisions are saved the moment a key is pressed; reopening the app returns the
    reviewer to where they stopped. Works in an 80x24 terminal over SSH; set NO_COLOR=1
    for a colourless screen, AUDITOR_KEYMAP='sample.flip=F,...' to remap keys.
    """
    import sys

    from store import StoreError

    with open_store(db_path, must_exist=True) as store:
        path = store.path
        if scorer is not None:
            try:
                store.find_scorer(scorer)
            except StoreError as e:
                fail(str(e), 1)
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        fail("the review app needs a terminal; for scripts use `auditor map` or `auditor info`")
    try:
        from tui.app import run_review
    except ImportError as e:
        fail(f"the review app needs Textual ({e}); install alignment-auditor with its extras")
    run_review(db_path=path, scorer=scorer, reviewer=reviewer or os.environ.get("USER"))
