"""`auditor info`."""

from __future__ import annotations

import json

import click

from auditor.cli import db_option, open_store


@click.command("info")
@db_option
@click.option("--json", "as_json", is_flag=True, help="Print the numbers as JSON for scripts.")
def command(db_path: str | None, as_json: bool) -> None:
    """Show datasets, formats, sample and response counts, rating and score coverage.

    A scorer's cost counts its calls and, for the reference scorer, the reference answers
    it uses (written once per model and shared by the scorers that use them).
    """
    with open_store(db_path, must_exist=True) as store:
        info = store.info()
        for s in info["scorers"]:
            generator = (s.get("config") or {}).get("generator")
            if generator:  # LLM-written references are paid once, shared by scorers using them
                from auditor.scorers.reference import generator_hash

                s["reference_cost_usd"] = store.reference_cost(generator_hash(generator))
    if as_json:
        click.echo(json.dumps(info, indent=2))
        return
    from rich.console import Console
    from rich.table import Column, Table
    from rich.text import Text

    from auditor.display import one_line

    console = Console(highlight=False)
    console.print(
        f"database {info['db']}: {info['samples']:,} samples, {info['responses']:,} responses",
        markup=False,
    )
    # names and hashes are what --dataset / --scorer take: fold them, never cut them with "…"
    table = Table("format", "samples", "responses", "rejects", "rated", title=None)
    table.columns.insert(0, Column("dataset", overflow="fold"))
    for d in info["datasets"]:
        table.add_row(
            Text(one_line(d["name"], 200)),
            Text(one_line(d["format"], 40)),
            f"{d['samples']:,}",
            f"{d['responses']:,}",
            f"{d['rejects']:,}",
            f"{d['rating_coverage']:.0%}",
        )
    console.print(table)
    if info["scorers"]:
        st = Table(
            Column("scorer", overflow="fold"),  # its name begins with its kind
            Column("config", overflow="fold", min_width=16),
            "ok",
            "failed",
            "coverage",
            "cost",
        )
        for s in info["scorers"]:
            failed = sum(n for k, n in s["scores"].items() if k != "ok")
            st.add_row(
                Text(one_line(s["name"], 200)),
                s["config_hash"],
                f"{s['scores'].get('ok', 0):,}",
                f"{failed:,}",
                f"{s['coverage']:.0%}",
                f"${s['cost_usd'] + s.get('reference_cost_usd', 0.0):.2f}",
            )
        console.print(st)
    else:
        console.print(
            "no scores yet: run `auditor score --scorer annotations` (or judge / reference)",
            markup=False,
        )
    if info["decisions"]:
        console.print(
            "decisions: " + ", ".join(f"{k} {n:,}" for k, n in info["decisions"].items()),
            markup=False,
        )
