"""`auditor demo`."""

from __future__ import annotations

import sys
from importlib import resources
from pathlib import Path

import click

from auditor.cli import fail, open_store

REFERENCE_SCORER = "reference:rougeL:dataset"


@click.command("demo")
@click.option(
    "--db",
    "db_path",
    type=click.Path(dir_okay=False),
    default="demo.db",
    show_default=True,
    help="Database file for the demo.",
)
@click.option("--no-tui", is_flag=True, help="Print the map summary instead of opening the app.")
def command(db_path: str, no_tui: bool) -> None:
    """Ingest the bundled SYNTHETIC demo set, score it, and open the review app.

    The demo set (300 prompts, four rated responses each, a reference answer per prompt)
    is made up for this project; about 6 % of its samples have reversed ratings planted
    for you to find. It is scored twice, with no network: from its ratings
    (annotations) and by ROUGE-L against the reference answers; the app opens on the
    ROUGE-L map, whose suspects are the samples where scores and ratings disagree.
    """
    from auditor.ingest import IngestError, ingest_file
    from auditor.scorers.annotations import score_annotations

    demo = Path(str(resources.files("auditor.demo").joinpath("demo.jsonl.gz")))
    with open_store(db_path) as store:
        try:
            report = ingest_file(store, demo, name="demo")
        except IngestError as e:
            fail(str(e))
        click.echo(report.summary())
        scored = score_annotations(store)
        click.echo(f"scorer {scored.scorer}: {scored.scored:,} responses scored from ratings")
        # the paper's reference-based scorer with its dependency-free variant: ROUGE-L
        # against each prompt's reference answer; where it disagrees with the ratings,
        # the planted misannotations show up as suspects
        from auditor.scorers.session import ScoreSettings, run_reference

        ref = run_reference(
            store, ScoreSettings(model="none"), source="dataset", similarity="rougeL"
        )
        click.echo(
            f"scorer {ref.scorer}: {ref.statuses.get('ok', 0):,} responses scored by ROUGE-L "
            "against the reference answers"
        )
    interactive = sys.stdout.isatty() and sys.stdin.isatty()
    if no_tui or not interactive or not _has_tui():
        from auditor.commands.map import print_summary

        print_summary(db_path, REFERENCE_SCORER)
        if not no_tui and not interactive:
            click.echo(
                "(not a terminal: run `auditor review --db "
                f"{db_path}` in one to open the review app)"
            )
        return
    from tui.app import run_review

    run_review(db_path=db_path, scorer=REFERENCE_SCORER, reviewer=None)


def _has_tui() -> bool:
    try:
        from tui import app
    except ImportError:
        return False
    return hasattr(app, "run_review")
