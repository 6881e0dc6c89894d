"""`auditor map`."""

from __future__ import annotations

import json

import click

from auditor.cli import db_option, fail, open_store


def print_summary(db_path: str | None, scorer: str | None, as_json: bool = False) -> None:
    """Print the regions, their counts and the thresholds for one scorer."""
    from auditor.analysis import compute_map
    from store import StoreError

    with open_store(db_path, must_exist=True) as store:
        try:
            sc = store.find_scorer(scorer)
        except StoreError as e:
            fail(str(e), 1)
        result = compute_map(store, sc.id)
    counts = result.counts()
    n = sum(counts.values())
    if as_json:
        click.echo(
            json.dumps(
                {
                    "scorer": sc.name,
                    "config_hash": sc.config_hash,
                    "samples": n,
                    "thresholds": result.thresholds.as_dict(),
                    "regions": counts,
                    "excluded": result.excluded,
                },
                indent=2,
            )
        )
        return
    click.echo(f"scorer {sc.name} ({sc.config_hash}): {n:,} samples on the map")
    for region, count in counts.items():
        share = count / n if n else 0.0
        click.echo(f"  {region:8} {count:8,}  {share:6.1%}")
    t = result.thresholds
    click.echo(
        f"thresholds: variance > {t.variance:.5g} is HighVar; "
        f"mean > {t.mean:.5g} is HighAvg ({t.method})"
    )
    off = {k: v for k, v in result.excluded.items() if v}
    if off:
        click.echo(
            "off the map: " + ", ".join(f"{v:,} {k.replace('_', ' ')}" for k, v in off.items())
        )


@click.command("map")
@db_option
@click.option("--scorer", default=None, help="Scorer name or config hash (default: the newest).")
@click.option("--json", "as_json", is_flag=True, help="Print the numbers as JSON for scripts.")
def command(db_path: str | None, scorer: str | None, as_json: bool) -> None:
    """Print the Alignment Data Map: regions, their counts and the thresholds."""
    print_summary(db_path, scorer, as_json)
