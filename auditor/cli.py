"""The `auditor` command line. Subcommands live in `auditor.commands` and load on demand."""

from __future__ import annotations

import importlib
import sys
from typing import Any, NoReturn

import click

# name -> (module in auditor.commands, one-line help shown in `auditor --help`)
COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("demo", "Ingest the bundled synthetic demo set, score it, and open the review app."),
    "ingest": ("ingest", "Read preference data files into the database."),
    "info": ("info", "Show datasets, ratings coverage, scorers and score coverage."),
    "score": ("score", "Give every response an alignment score (annotations, judge, reference)."),
    "map": ("map", "Print the Alignment Data Map: regions, thresholds, a scatter."),
    "suspects": ("suspects", "List likely misannotated and low-information samples."),
    "review": ("review", "Open the terminal review app (map, queues, decisions)."),
    "export": (
        "export",
        "Write a cleaned dataset: a region, the paper's subset, decisions applied.",
    ),
}


class LazyGroup(click.Group):
    """Imports a subcommand's module only when that subcommand runs, so startup stays fast."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        module = importlib.import_module(f"auditor.commands.{COMMANDS[cmd_name][0]}")
        command: click.Command = module.command
        return command

    def invoke(self, ctx: click.Context) -> Any:
        from store import StoreError

        try:
            return super().invoke(ctx)
        except StoreError as e:  # a busy database and the like: a message, not a traceback
            fail(str(e), 1)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        with formatter.section("Commands"):
            formatter.write_dl([(name, helptext) for name, (_, helptext) in COMMANDS.items()])


def fail(message: str, code: int = 2) -> NoReturn:
    """Print a one-line (or short) error to stderr and exit with ``code``."""
    from auditor.display import clean_text

    # messages quote dataset text (field names, values): no escape sequence reaches the terminal
    click.echo(f"error: {clean_text(message)}", err=True)
    sys.exit(code)


db_option = click.option(
    "--db",
    "db_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="Database file. Default: $AUDITOR_DB, else ./auditor.db.",
)


def open_store(db_path: str | None, *, must_exist: bool = False) -> Any:
    """Open the store named by --db / $AUDITOR_DB / ./auditor.db, or exit with a clear error."""
    from store import Store, StoreError, default_db_path

    path = default_db_path(db_path)
    if must_exist and not path.exists():
        fail(f"{path}: no database here; create one with `auditor ingest FILE --db {path}`")
    try:
        return Store(path)
    except StoreError as e:
        fail(str(e))
    except Exception as e:  # sqlite3.DatabaseError and friends: not a database, locked, ...
        fail(f"{path}: cannot open the database ({e})")


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="alignment-auditor", prog_name="auditor")
def main() -> None:
    """Audit LLM preference data with the Alignment Data Map.

    \b
    The main job:
      auditor ingest data.jsonl        # any common preference format
      auditor score --scorer annotations   # or judge / reference
      auditor map                      # regions and thresholds
      auditor review                   # flip, drop, keep in the terminal
      auditor export clean.jsonl --paper-subset
    """


# -- review: shared by map and suspects ------------------------------------------------


def find_scorer_or_fail(store: Any, scorer: str | None, dataset: str | None) -> Any:
    """The scorer named (or the newest), after checking ``dataset`` exists; else exit 1."""
    from store import StoreError

    try:
        sc = store.find_scorer(scorer)
    except StoreError as e:
        fail(str(e), 1)
    if dataset is not None and store.dataset_named(dataset) is None:
        names = ", ".join(d["name"] for d in store.datasets()) or "none"
        fail(f"no dataset named {dataset!r}; this database has: {names}", 1)
    return sc
