"""`auditor map`: the Alignment Data Map in the terminal, as JSON, or as a picture."""

from __future__ import annotations

import json
import math
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
import numpy as np

from auditor.cli import db_option, fail, find_scorer_or_fail, open_store

if TYPE_CHECKING:
    from auditor.analysis import MapSettings
    from auditor.diagnosis import MapView

REGIONS = ("HighAvg", "LowAvg", "HighVar")
COLOURS = {"HighAvg": "green", "LowAvg": "orange", "HighVar": "red"}
HEX = {"HighAvg": "#2a9d5c", "LowAvg": "#e09f3e", "HighVar": "#c0392b"}
MARKERS = {"HighAvg": "+", "LowAvg": "x", "HighVar": "o"}
DENSITY_ABOVE = 2_000
"""More points than this are drawn as a density grid: shade = how many, colour = region."""
SHADES = ("░", "▒", "▓", "█")


@dataclass(slots=True)
class Block:
    """One map to draw: a dataset (or all samples pooled) with its own cuts."""

    title: str
    rows: np.ndarray
    variance: float | None
    mean: float | None


def _blocks(view: MapView, dataset: str | None = None) -> list[Block]:
    """One block per dataset when the split is per dataset, else one block."""
    t = view.thresholds
    if t.get("split") == "dataset" and t.get("datasets"):
        names = sorted({str(d) for d in view.dataset})
        out = []
        for name in names:
            cut = t["datasets"].get(name, {})
            rows = np.flatnonzero(view.dataset == name)
            out.append(Block(name, rows, cut.get("variance"), cut.get("mean")))
        return out
    title = f"{dataset} (regions from the pooled split)" if dataset else "all datasets, pooled"
    return [Block(title, np.arange(len(view)), t.get("variance"), t.get("mean"))]


def _table(
    view: MapView, rows: np.ndarray, reviewed: np.ndarray, flagged: np.ndarray
) -> dict[str, Any]:
    """Per region: count, share, mean of means, reviewed, flagged."""
    region = view.region[rows]
    on_map = int(np.sum(region != None))  # noqa: E711  (object array: elementwise test)
    out: dict[str, Any] = {}
    for r in REGIONS:
        sel = rows[region == r]
        ids = view.sample_id[sel]
        out[r] = {
            "count": int(sel.size),
            "share": sel.size / on_map if on_map else 0.0,
            "mean_of_means": float(np.mean(view.mean[sel])) if sel.size else None,
            "reviewed": int(np.isin(ids, reviewed).sum()),
            "flagged": int(np.isin(ids, flagged).sum()),
        }
    return out


def _excluded(view: MapView, rows: np.ndarray) -> dict[str, int]:
    off = view.region[rows] == None  # noqa: E711
    k = view.k[rows]
    return {
        "single_response": int(np.sum(off & (k < 2))),
        "missing_scores": int(np.sum(off & (k >= 2))),
    }


def _fmt(x: float | None, spec: str = ".4g") -> str:
    return "—" if x is None or (isinstance(x, float) and math.isnan(x)) else format(x, spec)


def map_report(
    store: Any,
    scorer: str | None,
    *,
    dataset: str | None = None,
    changes: dict[str, Any] | None = None,
    compare: bool = True,
) -> tuple[dict[str, Any], MapView, list[Block]]:
    """Everything `auditor map` prints, as a JSON-ready dict, with the view and its blocks."""
    from auditor.diagnosis import flagged_ids, load_map, region_composition, scorer_agreement

    sc = find_scorer_or_fail(store, scorer, dataset)
    settings = settings_for(store, sc.id, changes or {})
    view = load_map(store, sc.id, dataset=dataset, settings=settings)
    blocks = _blocks(view, dataset)
    reviewed = np.array(
        [s for s, d in store.decisions().items() if d.action is not None], dtype=np.int64
    )
    flagged = flagged_ids(view)
    t = view.thresholds
    per_dataset = {}
    for b in blocks:
        table = _table(view, b.rows, reviewed, flagged)
        per_dataset[b.title] = {
            "samples": sum(v["count"] for v in table.values()),
            "thresholds": {"variance": b.variance, "mean": b.mean},
            "regions": {r: v["count"] for r, v in table.items()},
            "table": table,
            "excluded": _excluded(view, b.rows),
        }
    everything = np.arange(len(view))
    table = _table(view, everything, reviewed, flagged)
    top = blocks[0] if len(blocks) == 1 else None
    report: dict[str, Any] = {
        "scorer": sc.name,
        "config_hash": sc.config_hash,
        "kind": sc.kind,
        "dataset": dataset,
        "samples": sum(v["count"] for v in table.values()),
        "thresholds": {
            "variance": top.variance if top else None,
            "mean": top.mean if top else None,
            "high_var_fraction": t.get("high_var_fraction"),
            "method": t.get("method"),
        },
        "regions": {r: v["count"] for r, v in table.items()},
        "split": t.get("split", "pooled"),
        "table": table,
        "excluded": _excluded(view, everything),
        "datasets": per_dataset if t.get("split") == "dataset" else {},
        "composition": region_composition(store, sc.id, dataset, fresh=True),
    }
    if compare:
        others = [i for i in store.scored_scorer_ids() if i != sc.id]
        by_id = {s.id: s for s in store.scorers()}
        report["agreement"] = [
            {"scorer": by_id[o].name, "config_hash": by_id[o].config_hash}
            | scorer_agreement(store, sc.id, o)
            for o in others
        ]
    return report, view, blocks


def print_summary(
    db_path: str | None,
    scorer: str | None,
    as_json: bool = False,
    *,
    dataset: str | None = None,
    changes: dict[str, Any] | None = None,
    plot: bool = False,
    compare: bool = True,
    width: int | None = None,
    height: int | None = None,
    picture: tuple[str, str] | None = None,
) -> None:
    """Print the regions, their counts and the thresholds for one scorer (and the scatter)."""
    with open_store(db_path, must_exist=True) as store:
        if picture is not None:
            from auditor.export import input_named

            what = input_named(store, Path(picture[0]))
            if what is not None:
                fail(f"{picture[0]}: is {what}; the picture must not overwrite it", 2)
        report, view, blocks = map_report(
            store, scorer, dataset=dataset, changes=changes, compare=compare
        )
    if picture is not None:
        write_picture(view, blocks, report, *picture)
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    _print_text(report, view, blocks, plot=plot, width=width, height=height)
    if picture is not None:
        click.echo(f"wrote {picture[0]}")


def _print_text(
    report: dict[str, Any],
    view: MapView,
    blocks: list[Block],
    *,
    plot: bool,
    width: int | None,
    height: int | None,
) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from auditor.display import one_line

    console = Console(highlight=False, soft_wrap=True)
    scope = f", dataset {report['dataset']}" if report["dataset"] else ""
    console.print(
        f"scorer {report['scorer']} ({report['config_hash']}, {report['kind']}){scope}: "
        f"{report['samples']:,} samples on the map",
        markup=False,
    )
    if report["samples"] == 0:
        console.print(
            "no sample here has every response scored by this scorer: run `auditor score`, "
            "or pick another with --scorer (see `auditor info`)",
            markup=False,
        )
    split = report["split"]
    if split == "dataset" and len(blocks) > 1:
        console.print(
            "regions are split within each dataset (their scales may differ); "
            "`--pool` splits all samples together",
            markup=False,
        )
    unmapped = []
    for b in blocks:
        entry = report["datasets"].get(b.title) if report["datasets"] else None
        table = entry["table"] if entry else report["table"]
        if len(blocks) > 1 and entry is not None and entry["samples"] == 0:
            unmapped.append(one_line(b.title, 200))  # one line for all, not an empty table each
            continue
        if len(blocks) > 1 or split == "dataset":
            console.print(f"\n== {one_line(b.title, 200)} ==", markup=False)
        if plot:
            click.echo(terminal_plot(view, b, report["scorer"], width=width, height=height))
        t = Table("region", "count", "share", "mean of means", "reviewed", "flagged")
        for r in REGIONS:
            row = table[r]
            t.add_row(
                r,
                f"{row['count']:,}",
                f"{row['share']:.1%}",
                _fmt(row["mean_of_means"]),
                f"{row['reviewed']:,}",
                f"{row['flagged']:,}",
            )
        console.print(t)
        console.print(_threshold_line(report["thresholds"], b), markup=False)
        tied, mapped = _tied_at_cuts(view, b)
        if mapped and tied / mapped > 0.1:
            console.print(
                f"note: {tied:,} of {mapped:,} samples ({tied / mapped:.0%}) tie exactly at a cut "
                "and are placed by sample id, not by their scores (coarse scores such as labels "
                "or 1-5 ratings): their regions say little; a finer scorer separates them",
                markup=False,
            )
    if unmapped:
        console.print(
            f"\nnot on this map (no sample has every response scored by this scorer): "
            f"{', '.join(unmapped)}",
            markup=False,
        )
    off = {k: v for k, v in report["excluded"].items() if v}
    if off:
        console.print(
            "off the map: " + ", ".join(f"{v:,} {k.replace('_', ' ')}" for k, v in off.items()),
            markup=False,
        )
    console.print(
        "flagged: likely flipped pairs and rating disagreements (`auditor suspects`); "
        "reviewed: samples with a decision",
        markup=False,
    )
    for by, unit in (("source", "samples"), ("model", "responses")):
        counts = report["composition"][by]
        if not any(set(v) - {"(none)"} for v in counts.values()):
            continue
        console.print(f"\n{by}s per region, share of its {unit} (top 3):", markup=False)
        for r in REGIONS:
            total = sum(counts[r].values()) or 1
            top = ", ".join(f"{k} {n / total:.0%}" for k, n in list(counts[r].items())[:3])
            console.print(Text(f"  {r:8} {one_line(top, 200)}"))
    for a in report.get("agreement", []):
        console.print(
            f"agreement with {a['scorer']} ({a['config_hash']}): Spearman "
            f"{_fmt(a['spearman'], '.3f')} over {a['responses']:,} responses; pairs in the "
            f"same order {_fmt(a['same_order'], '.1%')}, kappa {_fmt(a['kappa'], '.3f')} "
            f"over {a['pairs']:,} pairs; same region {_fmt(a['same_region'], '.1%')}",
            markup=False,
        )


def _tied_at_cuts(view: MapView, b: Block) -> tuple[int, int]:
    """Samples whose region came from the tie-break (equal values straddling a cut), and all."""
    rows = b.rows[view.region[b.rows] != None]  # noqa: E711
    if not rows.size or b.variance is None or b.mean is None:
        return 0, int(rows.size)
    var, mean, region = view.var[rows], view.mean[rows], view.region[rows]
    tied = np.zeros(rows.size, dtype=bool)
    at_var = var == b.variance
    if len(set(region[at_var] == "HighVar")) > 1:
        tied |= at_var
    at_mean = (mean == b.mean) & (region != "HighVar")
    if len(set(region[at_mean])) > 1:
        tied |= at_mean
    return int(tied.sum()), int(rows.size)


def _threshold_line(t: dict[str, Any], b: Block) -> str:
    """The cuts in words, as the split applies them."""
    v, m = _fmt(b.variance, ".5g"), _fmt(b.mean, ".5g")
    if t.get("method") == "fixed":
        return f"thresholds (fixed): variance > {v} is HighVar; else mean > {m} is HighAvg"
    share = t.get("high_var_fraction")
    share = 1 / 3 if share is None else share  # 0 is a choice: no HighVar at all
    return (
        f"thresholds: variance {v} (HighVar: the top {share:.3g} by variance, at or above it) "
        f"and mean {m} (HighAvg: the rest above this median); equal values at a cut are "
        "split by sample id"
    )


def terminal_plot(
    view: MapView,
    block: Block,
    scorer: str,
    *,
    width: int | None = None,
    height: int | None = None,
) -> str:
    """The scatter as text: variance x, mean y, region boundaries, one colour per region."""
    try:
        import plotext as plt
    except ImportError:
        fail("the terminal scatter needs plotext: pip install plotext (or use --no-plot)", 1)
    plt.clear_figure()
    width = width or min(shutil.get_terminal_size().columns, 100)
    height = height or 24
    plt.plotsize(width, height)
    plt.theme("clear")
    rows = block.rows[view.region[block.rows] != None]  # noqa: E711
    x, y, reg = view.var[rows], view.mean[rows], view.region[rows]
    if rows.size == 0:
        return "(no sample on the map)"
    dense = rows.size > DENSITY_ABOVE
    x_lo, x_hi = float(x.min()), float(x.max())
    y_lo, y_hi = float(y.min()), float(y.max())

    def boundaries() -> None:
        if block.variance is not None and math.isfinite(block.variance):
            plt.vline(block.variance, "gray")
            if block.mean is not None and math.isfinite(block.mean):
                plt.plot([x_lo, block.variance], [block.mean, block.mean], color="gray", marker="─")

    if dense:  # cells fill the plot: boundaries go on top or they vanish
        _density(plt, x, y, reg, width, height)
        boundaries()
    else:  # single points: boundaries underneath, so no point is hidden
        boundaries()
        for r in REGIONS:
            sel = reg == r
            if sel.any():
                plt.scatter(x[sel], y[sel], marker=MARKERS[r], color=COLOURS[r])
    pad_x = (x_hi - x_lo) * 0.02 or 0.5
    pad_y = (y_hi - y_lo) * 0.04 or 0.5
    plt.xlim(max(x_lo - pad_x, 0.0) if x_lo >= 0 else x_lo - pad_x, x_hi + pad_x)
    plt.ylim(y_lo - pad_y, y_hi + pad_y)
    shade = f"; shade {' '.join(SHADES)}: fewer to more samples" if dense else ""
    from auditor.display import one_line

    plt.title(one_line(f"{block.title} · {scorer}", 200))
    plt.xlabel("variance of scores (variability)")
    plt.ylabel("mean score")
    legend = "   ".join(
        click.style(
            f"{SHADES[-1] if dense else MARKERS[r]} {r} ({int(np.sum(reg == r)):,})",
            fg={"HighAvg": "green", "LowAvg": "yellow", "HighVar": "red"}[r],
        )
        for r in REGIONS
    )
    out: str = plt.build()
    plt.clear_figure()
    return f"{out}\n{legend}{shade}"


def _density(
    plt: Any, x: np.ndarray, y: np.ndarray, reg: np.ndarray, width: int, height: int
) -> None:
    """A grid roughly the plot's size: each cell coloured by its commonest region."""
    cols, lines = max(width - 12, 10), max(height - 6, 5)
    span_x = float(x.max() - x.min()) or 1.0
    span_y = float(y.max() - y.min()) or 1.0
    cx = np.minimum(((x - x.min()) / span_x * cols).astype(np.int64), cols - 1)
    cy = np.minimum(((y - y.min()) / span_y * lines).astype(np.int64), lines - 1)
    cell = cx * lines + cy
    code = np.zeros(reg.size, dtype=np.int64)
    for i, r in enumerate(REGIONS):
        code[reg == r] = i
    counts = np.zeros((cols * lines, len(REGIONS)), dtype=np.int64)
    np.add.at(counts, (cell, code), 1)
    total = counts.sum(axis=1)
    used = np.flatnonzero(total)
    dominant = counts[used].argmax(axis=1)
    # shade by quartile of log(count) among occupied cells
    level = np.log(total[used])
    edges = np.quantile(level, [0.25, 0.5, 0.75]) if used.size else np.zeros(3)
    shade = np.searchsorted(edges, level, side="right")
    px = x.min() + (used // lines + 0.5) * span_x / cols
    py = y.min() + (used % lines + 0.5) * span_y / lines
    for i, r in enumerate(REGIONS):
        for s, ch in enumerate(SHADES):
            sel = (dominant == i) & (shade == s)
            if sel.any():
                plt.scatter(px[sel], py[sel], marker=ch, color=COLOURS[r])


def write_picture(
    view: MapView, blocks: list[Block], report: dict[str, Any], path: str, fmt: str
) -> None:
    """The map as a PNG or SVG file via matplotlib, one panel per dataset."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as pyplot
    except ImportError:
        fail(
            f"--{fmt} needs matplotlib, which is not installed: "
            "pip install 'alignment-auditor[plot]' (or pip install matplotlib)",
            1,
        )
    n = len(blocks)
    fig, axes = pyplot.subplots(1, n, figsize=(6.4 * n, 4.8), squeeze=False)
    for ax, b in zip(axes[0], blocks, strict=True):
        rows = b.rows[view.region[b.rows] != None]  # noqa: E711
        many = rows.size > 20_000
        for r in REGIONS:
            sel = rows[view.region[rows] == r]
            ax.scatter(
                view.var[sel],
                view.mean[sel],
                s=1 if many else 6,
                alpha=0.3 if many else 0.7,
                color=HEX[r],
                label=f"{r} ({sel.size:,})",
                rasterized=many,
                linewidths=0,
            )
        if b.variance is not None and math.isfinite(b.variance):
            ax.axvline(b.variance, color="0.4", lw=0.8, ls="--")
            if b.mean is not None and math.isfinite(b.mean) and rows.size:
                x_lo = float(np.min(view.var[rows]))
                ax.hlines(b.mean, x_lo, b.variance, color="0.4", lw=0.8, ls="--")
        ax.set_xlabel("variance of scores")
        ax.set_ylabel("mean score")
        ax.set_title(
            f"{b.title} · {report['scorer']}\n"
            f"cuts: variance {_fmt(b.variance, '.4g')}, mean {_fmt(b.mean, '.4g')}",
            fontsize=10,
        )
        ax.legend(loc="best", fontsize=8, markerscale=3 if many else 1.5)
    fig.tight_layout()
    try:
        fig.savefig(path, format=fmt, dpi=200)
    except OSError as e:
        fail(f"{path}: cannot write the picture ({e})", 1)
    finally:
        pyplot.close(fig)


def split_changes(
    pool: bool | None,
    fraction: float | None,
    fixed: tuple[float, float] | None,
    reset: bool = False,
) -> dict[str, Any]:
    """What the command line changes in the stored split (empty: keep it as it is)."""
    from auditor.analysis import MapSettings

    changes: dict[str, Any] = {}
    if reset:
        changes = MapSettings().as_dict() | {"fixed": None}
    if pool is not None:
        changes["by_dataset"] = not pool
    if fraction is not None:
        changes["high_var_fraction"] = fraction
        changes["fixed"] = None
    if fixed is not None:
        if not all(math.isfinite(x) for x in fixed):
            fail(f"--fixed needs two finite numbers, got {fixed[0]} {fixed[1]}")
        changes["fixed"] = fixed
    return changes


def settings_for(store: Any, scorer_id: int, changes: dict[str, Any]) -> MapSettings | None:
    """The stored split with these changes, or None to keep the stored one as it is."""
    from dataclasses import replace

    from auditor.analysis import MapSettings

    if not changes:
        return None
    run = store.map_run(scorer_id)
    base = MapSettings.from_dict(run["thresholds"].get("settings") if run else None)
    return replace(base, **changes)


split_options = [
    click.option(
        "--pool/--by-dataset",
        "pool",
        default=None,
        help="Split all samples together, or within each dataset (the default: datasets may "
        "rate on different scales). The choice is stored: review and export use it.",
    ),
    click.option(
        "--high-var-fraction",
        "fraction",
        type=click.FloatRange(0, 1, max_open=True),
        default=None,
        help="Share of samples (top by variance) that is HighVar. Default: 1/3, the paper's.",
    ),
    click.option(
        "--paper-split",
        "reset",
        is_flag=True,
        help="Back to the default: the paper's split (a third by variance, then the median "
        "mean) within each dataset.",
    ),
    click.option(
        "--fixed",
        type=(float, float),
        default=None,
        metavar="VARIANCE MEAN",
        help="Cut at given thresholds instead: variance > VARIANCE is HighVar, else "
        "mean > MEAN is HighAvg.",
    ),
]


def with_split_options(f: Any) -> Any:
    """Add --pool/--by-dataset, --high-var-fraction, --paper-split and --fixed."""
    for option in reversed(split_options):
        f = option(f)
    return f


@click.command("map")
@db_option
@click.option("--scorer", default=None, help="Scorer name or config hash (default: the newest).")
@click.option("--dataset", default=None, help="Only this dataset (see `auditor info`).")
@with_split_options
@click.option("--json", "as_json", is_flag=True, help="Print the numbers as JSON for scripts.")
@click.option("--png", type=click.Path(dir_okay=False), help="Also write the map as a PNG.")
@click.option("--svg", type=click.Path(dir_okay=False), help="Also write the map as an SVG.")
@click.option("--no-plot", is_flag=True, help="Only the tables, no scatter.")
@click.option(
    "--no-compare",
    is_flag=True,
    help="Skip the agreement with the other scorers in the database (it reads their maps).",
)
@click.option("--width", type=click.IntRange(30), default=None, help="Scatter width in columns.")
@click.option("--height", type=click.IntRange(10), default=None, help="Scatter height in lines.")
def command(
    db_path: str | None,
    scorer: str | None,
    dataset: str | None,
    pool: bool | None,
    fraction: float | None,
    reset: bool,
    fixed: tuple[float, float] | None,
    as_json: bool,
    png: str | None,
    svg: str | None,
    no_plot: bool,
    no_compare: bool,
    width: int | None,
    height: int | None,
) -> None:
    """Print the Alignment Data Map: a scatter, the regions and the thresholds.

    \b
    Each sample sits at (variance, mean) of its responses' scores, as the scorer gives
    them (not normalised). The paper's split: the top third by variance is HighVar; the
    rest splits at its median mean into HighAvg (above) and LowAvg. Ties go by sample id.
    When the database holds several datasets, each is split on its own and gets its own
    thresholds (their rating scales may differ); --pool splits them together.
    Below the scatter, per region: count, share, mean of means, reviewed (samples with a
    decision) and flagged (suspects from `auditor suspects`), then the thresholds, the
    sources per region and, with several scorers, how they agree.
    """
    if png and svg:
        fail("give --png or --svg, not both (run twice for both pictures)")
    picture = (png, "png") if png else (svg, "svg") if svg else None
    print_summary(
        db_path,
        scorer,
        as_json,
        dataset=dataset,
        changes=split_changes(pool, fraction, fixed, reset),
        plot=not no_plot,
        compare=not no_compare,
        width=width,
        height=height,
        picture=picture,
    )
