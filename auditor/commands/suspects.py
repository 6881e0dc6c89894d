"""`auditor suspects`: likely misannotated and low-information samples, ranked, with evidence."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import click

from auditor.cli import db_option, find_scorer_or_fail, open_store

if TYPE_CHECKING:
    from auditor.diagnosis import Diagnosis, Suspect

TITLES = {
    "flipped_label": "Likely flipped labels: the scorer prefers the rejected response",
    "rating_disagreement": "Scores disagree with the annotated ratings (lowest Kendall tau first)",
    "low_information": "Low-information pairs: ties and tiny margins",
}


def _num(x: float | None, spec: str = "+.3g") -> str:
    return "—" if x is None else format(x, spec)


def _scores(s: Suspect) -> str:
    """The evidence in one cell: each response's score (and rating when present)."""
    parts = []
    for r in s.responses:
        label = r["role"][0].upper() if r["role"] in ("chosen", "rejected") else str(r["idx"])
        score = "—" if r["score"] is None else f"{r['score']:.3g}"
        rating = "" if r["rating"] is None else f"/{r['rating']:.3g}"
        parts.append(f"{label}:{score}{rating}")
    return " ".join(parts)


def diagnosis_json(scorer: Any, dataset: str | None, d: Diagnosis) -> dict[str, Any]:
    """What `auditor suspects --json` prints."""
    return {
        "scorer": scorer.name,
        "config_hash": scorer.config_hash,
        "dataset": dataset,
        "rules": {"tiny_margin": d.tiny_margin, "max_tau": d.max_tau},
        "totals": d.totals,
        "low_impact": d.low_impact,
        "suspects": {k: [s.as_dict() for s in v] for k, v in d.suspects.items()},
    }


@click.command("suspects")
@db_option
@click.option("--scorer", default=None, help="Scorer name or config hash (default: the newest).")
@click.option("--dataset", default=None, help="Only this dataset (see `auditor info`).")
@click.option(
    "--top",
    type=click.IntRange(0),
    default=20,
    show_default=True,
    help="How many of each kind to list (0: all).",
)
@click.option(
    "--margin",
    type=click.FloatRange(0),
    default=None,
    help="Tiny margin in score units: a pair whose margin is below minus this is a likely "
    "flipped label, within ±this a low-information pair. Default: 5 % of the range of "
    "the dataset's pair scores.",
)
@click.option(
    "--max-tau",
    type=click.FloatRange(-1, 1),
    default=0.0,
    show_default=True,
    help="A sample with 3+ responses is a suspect when Kendall's tau between its scores "
    "and its ratings is below this.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the suspects as JSON for scripts.")
def command(
    db_path: str | None,
    scorer: str | None,
    dataset: str | None,
    top: int,
    margin: float | None,
    max_tau: float,
    as_json: bool,
) -> None:
    """List likely misannotated and low-information samples, ranked, with their evidence.

    \b
    Pairs (a chosen and a rejected response): the signed margin
    m = score(chosen) - score(rejected). A clearly negative m means the scorer prefers
    the rejected response: a likely flipped label, most negative first (ranked by m as a
    share of the dataset's score range, so datasets on different scales compare).
    Ties and tiny |m| are low-information pairs, listed apart.
    Samples with three or more rated responses: Kendall's tau-b between the scores and
    the annotated ratings (and the paper's cosine); lowest tau first.
    The regions LowAvg and HighVar (low impact on training) are counted, not listed:
    see `auditor map`. A reviewer's decision, if any, is shown with each suspect.
    """
    from auditor.diagnosis import find_suspects

    with open_store(db_path, must_exist=True) as store:
        sc = find_scorer_or_fail(store, scorer, dataset)
        d = find_suspects(
            store, sc.id, dataset=dataset, top=top or None, margin=margin, max_tau=max_tau
        )
    if as_json:
        click.echo(json.dumps(diagnosis_json(sc, dataset, d), indent=2))
        return
    _print(sc, dataset, d)


def _print(sc: Any, dataset: str | None, d: Diagnosis) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from auditor.display import one_line

    console = Console(highlight=False, soft_wrap=True)
    # cells are cut here, not by rich, so narrow terminals lose prompt text, not columns
    spare = max(console.width - 52, 24)
    scope = f", dataset {dataset}" if dataset else ""
    console.print(
        f"scorer {sc.name} ({sc.config_hash}){scope}: "
        + ", ".join(f"{n:,} {k.replace('_', ' ')}" for k, n in d.totals.items()),
        markup=False,
    )
    if d.tiny_margin:
        console.print(
            "tiny margin: "
            + ", ".join(f"{one_line(name, 60)} {eps:.3g}" for name, eps in d.tiny_margin.items()),
            markup=False,
        )
    for kind, items in d.suspects.items():
        if not items:
            continue
        shown = f"top {len(items):,} of {d.totals[kind]:,}"
        several = len({s.dataset for s in items}) > 1
        room = spare - 19 if several else spare
        table = Table(title=Text(f"{TITLES[kind]} ({shown})"), title_justify="left")
        table.add_column("sample", justify="right", no_wrap=True)
        if several:
            table.add_column("dataset", no_wrap=True, max_width=16, overflow="ellipsis")
        if kind == "rating_disagreement":
            table.add_column("tau", justify="right", no_wrap=True)
            table.add_column("cos", justify="right", no_wrap=True)
        else:
            table.add_column("margin", justify="right", no_wrap=True)
            table.add_column("share", justify="right", no_wrap=True)
        table.add_column("region", no_wrap=True)
        table.add_column("decided", no_wrap=True)
        table.add_column("scores/rating · prompt", no_wrap=True)
        for s in items:
            if kind == "rating_disagreement":
                a, b = _num(s.tau, "+.2f"), _num(s.cosine, ".3f")
            else:
                a, b = _num(s.margin), _num(s.relative_margin, "+.0%")
            cells: list[str | Text] = [str(s.sample_id)]
            if several:
                cells.append(Text(one_line(s.dataset, 40)))
            cells += [
                a,
                b,
                s.region or "off map",
                s.decision or "",
                Text(one_line(_scores(s), room))
                + Text("\n")
                + Text(one_line(s.prompt, room), style="dim"),
            ]
            table.add_row(*cells)
        console.print(table)
    low = ", ".join(f"{n:,} {r}" for r, n in d.low_impact.items())
    console.print(f"low impact (see `auditor map`): {low}", markup=False)
