"""`auditor ingest`."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from auditor.cli import db_option, fail, open_store
from auditor.formats import FORMATS


@click.command("ingest")
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@db_option
@click.option(
    "--format",
    "format_name",
    type=click.Choice(sorted(FORMATS)),
    default=None,
    help="Input format; detected from the first records when left out.",
)
@click.option(
    "--map",
    "map_spec",
    default=None,
    metavar="FIELD=PATH,...",
    help="Read fields at dotted paths, e.g. prompt=question,chosen=answers.0.text,"
    "rejected=answers.1.text. Fields: prompt, chosen, rejected, responses, score_chosen, "
    "score_rejected, reference, source, chosen_model, rejected_model.",
)
@click.option(
    "--skip-invalid",
    is_flag=True,
    help="Go on past bad records; write them verbatim to FILE.rejects.jsonl and count them.",
)
@click.option(
    "--name",
    default=None,
    help="Dataset name, as other commands take it with --dataset (default: the file name; "
    "a name already taken gets -2, -3, ..., which the summary line shows).",
)
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    default=None,
    help="Processes that parse JSON lines of large files (>= 16 MB) in parallel. "
    "Default: the cores, at most 4; 1 parses in this process (better on a busy machine).",
)
def command(
    files: tuple[Path, ...],
    db_path: str | None,
    format_name: str | None,
    map_spec: str | None,
    skip_invalid: bool,
    name: str | None,
    workers: int | None,
) -> None:
    """Read preference data FILES into the database.

    \b
    Files: .jsonl, .json (an array), either gzipped, .parquet, .csv.
    Formats (detected, or named with --format):
      trl, trl-chat, hh-rlhf, ultrafeedback, multi, pandalm, sharegpt, hh-messages
    Each file is one dataset and one transaction: a bad record stops the file with
    a message naming the line and field, exit code 2, and nothing from it is kept.
    Ingesting the same file again adds nothing.
    """
    from auditor.display import clean_text
    from auditor.ingest import IngestError, ingest_file

    if name and len(files) > 1:
        fail("--name names one dataset; give one file with it")
    store = open_store(db_path)
    failed = False
    with store:
        for path in files:
            progress = _progress(path)
            try:
                with progress as update:
                    report = ingest_file(
                        store,
                        path,
                        format_name=format_name,
                        map_spec=map_spec,
                        skip_invalid=skip_invalid,
                        name=name,
                        on_progress=update,
                        workers=workers,
                    )
            except IngestError as e:
                click.echo(f"error: {clean_text(str(e))}", err=True)
                failed = True
                continue
            click.echo(report.summary())
    if failed:
        sys.exit(2)


class _NoProgress:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def _progress(path: Path):
    """A rich progress bar on stderr when it is a terminal, else nothing."""
    if not sys.stderr.isatty():
        return _NoProgress()
    import contextlib

    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TransferSpeedColumn,
    )

    from auditor.display import one_line

    @contextlib.contextmanager
    def bar():
        total = path.stat().st_size if path.exists() else None
        progress = Progress(
            TextColumn("{task.description}", style="bold", markup=False),  # a file name
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TextColumn("{task.fields[rows]:,} rows ({task.fields[rate]:,.0f}/s)"),
            TimeElapsedColumn(),
            console=Console(stderr=True),
            transient=True,
        )
        task = progress.add_task(one_line(path.name, 60), total=total, rows=0, rate=0.0)
        with progress:

            def update(done: int, rows: int) -> None:
                elapsed = progress.tasks[0].elapsed or 1e-9
                progress.update(task, completed=done, rows=rows, rate=rows / elapsed)

            yield update

    return bar()
