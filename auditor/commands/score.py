"""`auditor score`."""

from __future__ import annotations

import click

from auditor.cli import db_option, fail, open_store


@click.command("score")
@db_option
@click.option(
    "--scorer",
    "kind",
    type=click.Choice(["annotations", "judge", "reference"]),
    required=True,
    help="annotations: ratings already in the data (no model call); judge: an LLM rates each "
    "response; reference: similarity to a reference answer.",
)
@click.option(
    "--field",
    default="auto",
    show_default=True,
    help="annotations: which rating to use (auto, or e.g. helpfulness, overall_score).",
)
def command(db_path: str | None, kind: str, field: str) -> None:
    """Give every response an alignment score and store it with its scorer configuration."""
    with open_store(db_path, must_exist=True) as store:
        if kind == "annotations":
            from auditor.scorers.annotations import score_annotations

            report = score_annotations(store, field)
            click.echo(
                f"scorer {report.scorer} ({report.config_hash}): {report.scored:,} responses "
                f"scored from annotations, {report.without_rating:,} without a rating"
            )
            if report.scored == 0:
                fail("no response in this database carries that rating; try --field auto", 1)
            return
        fail(f"the {kind} scorer is not available yet")
