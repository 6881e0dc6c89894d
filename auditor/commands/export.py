"""`auditor export`."""

from __future__ import annotations

import contextlib
import shlex
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import click

from auditor.cli import db_option, fail, open_store

FORMAT_NAMES = ("trl", "trl-chat", "original", "pairs-all", "binarized")


@click.command("export")
@click.argument("out", type=click.Path(path_type=Path))
@db_option
@click.option(
    "--format",
    "format_name",
    type=click.Choice(FORMAT_NAMES),
    default="trl",
    show_default=True,
    help="trl: {prompt, chosen, rejected} strings, one pair per sample (multi-response: best "
    "vs worst). trl-chat: the same as [{role, content}] lists. original: the input records "
    "exactly as they came, only the decisions applied. pairs-all: every pair whose scores "
    "differ, the higher chosen, ties dropped (the paper's training pairs). binarized: the "
    "best vs a random lower-scored other (--seed).",
)
@click.option(
    "--region",
    "regions",
    multiple=True,
    metavar="NAME",
    help="Keep samples in this region of the map: HighAvg, LowAvg or HighVar (any case; "
    "repeat for several).",
)
@click.option(
    "--paper-subset", is_flag=True, help="The HighAvg third: the paper's selected subset."
)
@click.option(
    "--random-third",
    is_flag=True,
    help="A seeded random third of the mapped samples: the paper's baseline (--seed 42).",
)
@click.option(
    "--seed",
    type=int,
    default=42,
    show_default=True,
    help="Seed for --random-third and for the binarized format's pick.",
)
@click.option(
    "--apply-decisions/--ignore-decisions",
    default=True,
    show_default=True,
    help="Apply reviewers' decisions: drop leaves a sample out, flip swaps chosen and "
    "rejected, a named best response leads the multi-response pairs.",
)
@click.option("--reviewed-only", is_flag=True, help="Keep only samples a reviewer decided on.")
@click.option("--dataset", default=None, help="Export one dataset (by name) only.")
@click.option(
    "--scorer",
    default=None,
    help="Scorer name or config hash whose map selects the regions (default: the newest).",
)
@click.option(
    "--rank-by",
    type=click.Choice(["annotations", "scorer"]),
    default="annotations",
    show_default=True,
    help="What ranks a multi-response sample's responses: the annotated ratings (as the "
    "paper does) or the scorer's scores. Pairs keep their labels.",
)
@click.option(
    "--workers",
    type=click.IntRange(1, 2),
    default=None,
    help="Processes that build the lines of a JSON Lines export (the file is the same "
    "either way). Default: 2 for 200,000 samples or more on a machine with two cores; "
    "1 builds them all in this process (better on a busy machine).",
)
def command(
    out: Path,
    db_path: str | None,
    format_name: str,
    regions: tuple[str, ...],
    paper_subset: bool,
    random_third: bool,
    seed: int,
    apply_decisions: bool,
    reviewed_only: bool,
    dataset: str | None,
    scorer: str | None,
    rank_by: str,
    workers: int | None,
) -> None:
    """Write a cleaned dataset to OUT, with OUT.manifest.json beside it.

    \b
    OUT ending in .parquet writes Parquet, .json a JSON array, anything else JSON
    Lines; a further .gz compresses (e.g. clean.jsonl.gz).
    Examples:
      auditor export highavg.jsonl --paper-subset
      auditor export random.jsonl --random-third --seed 42
      auditor export fixed.jsonl --format original --reviewed-only
      auditor export pairs.parquet --format pairs-all --region HighAvg

    The file is written to a temporary name and renamed at the end, so an
    interrupted export leaves an earlier file untouched; an input file or the
    database is never overwritten. The manifest records the source files and
    their hashes, the scorer, the thresholds, the selection, the counts and the
    decisions applied, so the subset can be rebuilt.
    """
    from auditor.export import ExportError, ExportOptions, export

    options = ExportOptions(
        format=format_name,
        regions=tuple(regions),
        paper_subset=paper_subset,
        random_third=random_third,
        seed=seed,
        apply_decisions=apply_decisions,
        reviewed_only=reviewed_only,
        dataset=dataset,
        scorer=scorer,
        rank_by=rank_by,
        command_line=shlex.join(["auditor", *sys.argv[1:]]),
    )
    with open_store(db_path, must_exist=True) as store:
        try:
            with _progress(out.name) as update:
                report = export(store, out, options, on_progress=update, workers=workers)
        except ExportError as e:
            fail(str(e), 2)
        except KeyboardInterrupt:
            fail(f"{out}: interrupted; nothing was written (any earlier file is untouched)", 130)
        except OSError as e:
            fail(f"{out}: cannot write ({e.strerror or e})", 2)
    for warning in report.warnings:
        click.echo(f"warning: {warning}", err=True)
    click.echo(report.summary())


@contextlib.contextmanager
def _progress(label: str) -> Iterator[Callable[[int, int], None] | None]:
    """A rich progress bar on stderr when it is a terminal, else nothing."""
    if not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    progress = Progress(
        TextColumn("[bold]export[/] {task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("samples"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
    )
    task = progress.add_task(label.replace("[", r"\["), total=None)
    with progress:

        def update(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        yield update
