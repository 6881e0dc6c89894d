"""`auditor map` and `auditor suspects` through the command line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from auditor.cli import main
from auditor.model import Action
from store import Store
from tests.mapdata import add_dataset, multi, pair, score


def make_db(path: Path, n: int = 12) -> list[int]:
    """n pairs scored 0-10; every third one has its label flipped by the scorer."""
    with Store(path) as store:
        ids = add_dataset(
            store,
            "pairs",
            [pair(None, None)] * n,
            prompts=[f"question {i}" for i in range(n)],
            sources=["evol" if i % 2 else "flan" for i in range(n)],
        )
        values = {}
        for i, sid in enumerate(ids):
            c, r = 5.0 + (i % 5), 5.0 - (i % 4)
            if i % 3 == 0:
                c, r = r - 1, c + 1
            values[(sid, 0)], values[(sid, 1)] = c, r
        score(store, "judge", values)
    return ids


def run(runner: CliRunner, *args: str) -> tuple[int, str]:
    result = runner.invoke(main, list(args))
    return result.exit_code, result.output


def test_map_json_gives_the_documented_numbers(runner: CliRunner, db_path: Path) -> None:
    make_db(db_path)
    code, out = run(runner, "map", "--db", str(db_path), "--json")
    assert code == 0, out
    data = json.loads(out)
    assert data["scorer"] == "judge"
    assert data["samples"] == 12
    assert data["regions"] == {"HighAvg": 4, "LowAvg": 4, "HighVar": 4}
    assert isinstance(data["thresholds"]["variance"], float)
    assert isinstance(data["thresholds"]["mean"], float)
    assert data["datasets"]["pairs"]["thresholds"] == {
        "variance": data["thresholds"]["variance"],
        "mean": data["thresholds"]["mean"],
    }
    assert sum(data["composition"]["source"]["HighAvg"].values()) == 4
    assert data["table"]["HighVar"]["count"] == 4


def test_map_prints_scatter_table_and_thresholds(runner: CliRunner, db_path: Path) -> None:
    ids = make_db(db_path)
    with Store(db_path) as store:
        store.decide(ids[0], Action.DROP, "ana")
    code, out = run(runner, "map", "--db", str(db_path), "--width", "70", "--height", "18")
    assert code == 0, out
    assert "variance of scores" in out and "mean score" in out  # the plotext axes
    assert "+ HighAvg (4)" in out and "o HighVar (4)" in out
    assert "thresholds: variance" in out
    assert "sources per region" in out and "evol" in out and "flan" in out
    assert "models per region" in out and "m0 50%" in out
    table = {line.split("│")[1].strip(): line for line in out.splitlines() if line.count("│") > 5}
    # four flipped pairs (samples 0, 3, 6, 9), one reviewed: all are flagged somewhere
    flagged = sum(int(table[r].split("│")[6]) for r in ("HighAvg", "LowAvg", "HighVar"))
    reviewed = sum(int(table[r].split("│")[5]) for r in ("HighAvg", "LowAvg", "HighVar"))
    assert flagged == 4 and reviewed == 1


def test_many_points_are_drawn_as_density(runner: CliRunner, db_path: Path) -> None:
    make_db(db_path, n=2100)
    code, out = run(runner, "map", "--db", str(db_path), "--width", "80")
    assert code == 0, out
    assert "shade ░ ▒ ▓ █" in out and "█ HighAvg (700)" in out


def test_map_dataset_filter_and_pooling(runner: CliRunner, db_path: Path) -> None:
    make_db(db_path)
    with Store(db_path) as store:
        ids = add_dataset(store, "five", [pair(5, 1), pair(4, 4), pair(2, 3)] * 2)
        score(store, "judge", {(s, j): float(j + i) for i, s in enumerate(ids) for j in range(2)})
    code, out = run(runner, "map", "--db", str(db_path), "--json")
    data = json.loads(out)
    assert data["split"] == "dataset" and data["thresholds"]["variance"] is None
    assert data["datasets"]["five"]["regions"] == {"HighAvg": 2, "LowAvg": 2, "HighVar": 2}
    code, out = run(runner, "map", "--db", str(db_path), "--json", "--dataset", "five")
    data = json.loads(out)
    assert data["samples"] == 6 and data["thresholds"]["variance"] is not None
    code, out = run(runner, "map", "--db", str(db_path), "--no-plot")
    assert "regions are split within each dataset" in out and "== five ==" in out
    code, out = run(runner, "map", "--db", str(db_path), "--json", "--pool")
    assert json.loads(out)["split"] == "pooled"
    code, out = run(runner, "map", "--db", str(db_path), "--json")
    assert json.loads(out)["split"] == "pooled"  # stored for review and export
    # a new fraction keeps the stored pooling; --paper-split goes back to the default
    code, out = run(runner, "map", "--db", str(db_path), "--json", "--high-var-fraction", "0.5")
    data = json.loads(out)
    assert data["split"] == "pooled" and data["regions"]["HighVar"] == 9
    code, out = run(runner, "map", "--db", str(db_path), "--json", "--paper-split")
    data = json.loads(out)
    assert data["split"] == "dataset" and data["regions"]["HighVar"] == 6
    code, out = run(runner, "map", "--db", str(db_path), "--dataset", "nope")
    assert code == 1 and "no dataset named 'nope'" in out and "five" in out


def test_json_stays_valid_when_nothing_is_high_var(runner: CliRunner, db_path: Path) -> None:
    make_db(db_path, n=2)  # a third of 2 rounds to 1; a fraction of 0.1 rounds to 0
    code, out = run(runner, "map", "--db", str(db_path), "--json", "--high-var-fraction", "0.1")
    assert code == 0, out
    data = json.loads(out, parse_constant=lambda c: pytest.fail(f"{c} is not JSON"))
    assert data["regions"]["HighVar"] == 0 and data["thresholds"]["variance"] is None


def test_fixed_thresholds(runner: CliRunner, db_path: Path) -> None:
    make_db(db_path)
    code, out = run(runner, "map", "--db", str(db_path), "--json", "--fixed", "100", "0")
    assert code == 0, out
    data = json.loads(out)
    assert data["thresholds"]["method"] == "fixed"
    assert data["regions"] == {"HighAvg": 12, "LowAvg": 0, "HighVar": 0}


@pytest.mark.parametrize("fmt", ["png", "svg"])
def test_picture_files(runner: CliRunner, db_path: Path, tmp_path: Path, fmt: str) -> None:
    pytest.importorskip("matplotlib")
    make_db(db_path)
    target = tmp_path / f"map.{fmt}"
    code, out = run(runner, "map", "--db", str(db_path), "--no-plot", f"--{fmt}", str(target))
    assert code == 0, out
    head = target.read_bytes()[:400]
    assert head.startswith(b"\x89PNG") if fmt == "png" else b"<svg" in head


def test_errors_are_messages(runner: CliRunner, db_path: Path, tmp_path: Path) -> None:
    code, out = run(runner, "map", "--db", str(tmp_path / "none.db"))
    assert code == 2 and "no database here" in out
    Store(db_path).close()
    code, out = run(runner, "map", "--db", str(db_path))
    assert code == 1 and "no scorer" in out
    make_db(db_path)
    code, out = run(runner, "map", "--db", str(db_path), "--scorer", "nope")
    assert code == 1 and "no scorer named 'nope'" in out
    code, out = run(runner, "map", "--db", str(db_path), "--png", "a.png", "--svg", "b.svg")
    assert code == 2 and "not both" in out
    code, out = run(runner, "map", "--db", str(db_path), "--png", str(tmp_path / "x" / "m.png"))
    assert code == 1 and "cannot write" in out


def test_single_response_and_unscored_samples_are_reported(
    runner: CliRunner, db_path: Path
) -> None:
    with Store(db_path) as store:
        ids = add_dataset(store, "d", [multi(1), multi(1, 2), multi(1, 2), multi(2, 1)])
        score(store, "s", {(ids[0], 0): 1.0, (ids[1], 0): 1.0, (ids[2], 0): 1.0, (ids[2], 1): 2.0})
    code, out = run(runner, "map", "--db", str(db_path), "--no-plot")
    assert code == 0, out
    assert "off the map: 1 single response, 2 missing scores" in out
    with Store(db_path) as store:
        add_dataset(store, "unscored", [multi(1, 2)])
    code, out = run(runner, "map", "--db", str(db_path), "--dataset", "unscored")
    assert code == 0 and "no sample here has every response scored" in out
    code, out = run(runner, "suspects", "--db", str(db_path))
    assert code == 0, out


def test_suspects_json_and_text(runner: CliRunner, db_path: Path) -> None:
    ids = make_db(db_path)
    code, out = run(runner, "suspects", "--db", str(db_path), "--json", "--top", "2")
    assert code == 0, out
    data = json.loads(out)
    assert data["totals"]["flipped_label"] == 4
    flipped = data["suspects"]["flipped_label"]
    assert len(flipped) == 2
    assert flipped[0]["margin"] <= flipped[1]["margin"] < 0
    assert {f["sample_id"] for f in flipped} <= {ids[0], ids[3], ids[6], ids[9]}
    assert flipped[0]["responses"][0]["role"] == "chosen"
    code, out = run(runner, "suspects", "--db", str(db_path))
    assert "Likely flipped labels" in out and "question" in out
    code, out = run(runner, "suspects", "--db", str(db_path), "--margin", "100")
    assert "0 flipped label" in out and "12 low information" in out


def test_suspects_show_hostile_prompts_literally(runner: CliRunner, db_path: Path) -> None:
    with Store(db_path) as store:
        ids = add_dataset(
            store,
            "d",
            [pair(None, None), pair(None, None)],
            prompts=["[bold red]x[/] \x1b[31mred\x1b[0m\x1b]0;pwned\x07 [INST]", "fine"],
        )
        score(store, "s", {(ids[0], 0): 0.0, (ids[0], 1): 9.0, (ids[1], 0): 9.0, (ids[1], 1): 0.0})
    code, out = run(runner, "suspects", "--db", str(db_path))
    assert code == 0, out
    assert "[bold red]x[/] red [INST]" in out
    assert "\x1b" not in out and "pwned" not in out


def test_map_without_a_scatter_never_loads_plotext(db_path: Path) -> None:
    import subprocess
    import sys

    make_db(db_path)
    code = (
        "import sys; from auditor.cli import main\n"
        f"try:\n    main(['map', '--db', {str(db_path)!r}, '--json'])\n"
        "except SystemExit as e:\n    assert not e.code, e.code\n"
        "assert 'plotext' not in sys.modules and 'textual' not in sys.modules\n"
        "assert 'matplotlib' not in sys.modules\n"
    )
    root = Path(__file__).resolve().parent.parent
    subprocess.run([sys.executable, "-c", code], check=True, cwd=root, capture_output=True)


def test_a_picture_never_overwrites_the_database(runner: CliRunner, db_path: Path) -> None:
    make_db(db_path)
    before = db_path.read_bytes()
    code, out = run(runner, "map", "--db", str(db_path), "--no-plot", "--png", str(db_path))
    assert code == 2 and "is the database" in out
    assert db_path.read_bytes() == before
    with Store(db_path) as store:
        assert store.find_scorer("judge").name == "judge"


def test_hostile_dataset_names_are_shown_literally(runner: CliRunner, db_path: Path) -> None:
    name = "[red]evil[/red]\x1b[31m\x1b]0;pwned\x07"
    with Store(db_path) as store:
        ids = add_dataset(store, name, [pair(None, None)] * 3)
        score(store, "s", {(s, j): float(i + j) for i, s in enumerate(ids) for j in (0, 1)})
    for args in (["info"], ["map"], ["map", "--no-plot"], ["suspects"]):
        code, out = run(runner, *args, "--db", str(db_path))
        assert code == 0, out
        assert "[red]evil[/red]" in out, args
        assert "\x1b[31m" not in out and "pwned" not in out, args


def test_info_never_cuts_the_names_that_dataset_and_scorer_take(
    runner: CliRunner, db_path: Path
) -> None:
    name = "alpacaeval_8models_gpt4turbo_judged_" + "x" * 20
    with Store(db_path) as store:
        ids = add_dataset(store, name, [pair(None, None)] * 2)
        sid = score(store, "reference:embedding:gpt-4o-2024-11-20", {(ids[0], 0): 1.0})
        config = next(s for s in store.scorers() if s.id == sid).config_hash
    code, out = run(runner, "info", "--db", str(db_path))
    assert code == 0, out
    assert "…" not in out and config in out and "$0.00" in out


def test_datasets_without_scores_take_one_line_not_an_empty_table_each(
    runner: CliRunner, db_path: Path
) -> None:
    with Store(db_path) as store:
        ids = add_dataset(store, "scored", [pair(None, None)] * 3)
        add_dataset(store, "unscored-a", [pair(None, None)] * 2)
        add_dataset(store, "unscored-b", [pair(None, None)] * 2)
        score(store, "s", {(s, j): float(i + j) for i, s in enumerate(ids) for j in (0, 1)})
    code, out = run(runner, "map", "--db", str(db_path), "--no-plot")
    assert code == 0, out
    assert out.count("mean of means") == 1 and "== scored ==" in out
    assert "not on this map" in out and "unscored-a, unscored-b" in out


def test_info_counts_what_reference_answers_cost(runner: CliRunner, db_path: Path) -> None:
    from auditor.scorers.reference import generator_hash, reference_config

    config = reference_config("llm", "rougeL", model="gpt-4o-2024-11-20")
    with Store(db_path) as store:
        ids = add_dataset(store, "d", [pair(None, None)])
        store.scorer("reference:rougeL:gpt-4o-2024-11-20", "reference", config)
        gh = generator_hash(config["generator"])
        store.save_reference_answer(gh, ids[0], text="ref", status="ok", cost=1.25)
    code, out = run(runner, "info", "--db", str(db_path), "--json")
    assert code == 0, out
    assert json.loads(out)["scorers"][0]["reference_cost_usd"] == 1.25
    code, out = run(runner, "info", "--db", str(db_path))
    assert code == 0 and "$1.25" in out


@pytest.mark.parametrize("command", ["map", "suspects"])
def test_unknown_scorer_or_dataset_lists_what_exists(
    runner: CliRunner, db_path: Path, command: str
) -> None:
    make_db(db_path)
    code, out = run(runner, command, "--db", str(db_path), "--scorer", "nope")
    assert code == 1 and "no scorer named 'nope'" in out and "judge" in out
    code, out = run(runner, command, "--db", str(db_path), "--dataset", "nope")
    assert code == 1 and "no dataset named 'nope'; this database has: pairs" in out


def test_a_map_placed_by_tie_break_says_so(runner: CliRunner, db_path: Path) -> None:
    with Store(db_path) as store:
        ids = add_dataset(store, "labels", [pair(None, None)] * 9)
        score(store, "s", {(s, j): float(j == 0) for s in ids for j in (0, 1)})
    code, out = run(runner, "map", "--db", str(db_path), "--no-plot")
    assert code == 0, out
    assert "note: 9 of 9 samples (100%) tie exactly at a cut" in out
    with Store(db_path.with_name("fine.db")) as store:
        ids = add_dataset(store, "fine", [pair(None, None)] * 9)
        score(
            store,
            "s",
            {(s, j): i * 0.1 + j * (i + 1) ** 2 for i, s in enumerate(ids) for j in (0, 1)},
        )
    code, out = run(runner, "map", "--db", str(db_path.with_name("fine.db")), "--no-plot")
    assert code == 0 and "tie exactly at a cut" not in out, out


def test_fixed_cuts_must_be_finite_and_a_zero_fraction_is_reported_as_zero(
    runner: CliRunner, db_path: Path
) -> None:
    make_db(db_path)
    for cuts in (["nan", "1"], ["1", "inf"]):
        code, out = run(runner, "map", "--db", str(db_path), "--no-plot", "--fixed", *cuts)
        assert code == 2 and "--fixed needs two finite numbers" in out
    code, out = run(runner, "map", "--db", str(db_path), "--no-plot")
    assert code == 0 and "thresholds (fixed)" not in out  # nothing was stored
    code, out = run(runner, "map", "--db", str(db_path), "--no-plot", "--high-var-fraction", "0")
    assert code == 0 and "the top 0 by variance" in out
