"""`auditor export` from the command line: the summary, the manifest, bad input → exit 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from auditor.cli import main
from tests.conftest import shared_file

ALPACA = "alpacaeval-multi/alpacaeval_8models_gpt4turbo_judged.jsonl.gz"


def run(runner: CliRunner, *args: str) -> tuple[int, str]:
    result = runner.invoke(main, list(args))
    return result.exit_code, result.output


@pytest.fixture
def scored_db(runner: CliRunner, db_path: Path) -> Path:
    code, out = run(runner, "ingest", str(shared_file(ALPACA)), "--db", str(db_path))
    assert code == 0, out
    code, out = run(runner, "score", "--scorer", "annotations", "--db", str(db_path))
    assert code == 0, out
    return db_path


def test_paper_subset_prints_a_summary_and_writes_a_manifest(
    runner: CliRunner, scored_db: Path, tmp_path: Path
) -> None:
    out = tmp_path / "paper.jsonl"
    code, text = run(runner, "export", str(out), "--db", str(scored_db), "--paper-subset")
    assert code == 0, text
    assert f"{out}: 268 records (trl) from 268 of 268 selected samples (805 in scope)" in text
    assert len(out.read_text().splitlines()) == 268
    manifest = json.loads(Path(f"{out}.manifest.json").read_text())
    # the rebuild command pins the scorer that made the map
    pinned = manifest["scorer"]["config_hash"]
    assert manifest["rebuild_with"] == (
        f"auditor export {out} --format trl --db {scored_db} --paper-subset --scorer {pinned}"
    )
    assert manifest["selection"]["paper_subset"] is True


def test_region_names_ignore_case(runner: CliRunner, scored_db: Path, tmp_path: Path) -> None:
    out = tmp_path / "hv.parquet"
    code, text = run(
        runner,
        "export",
        str(out),
        "--db",
        str(scored_db),
        "--region",
        "highvar",
        "--format",
        "pairs-all",
    )
    assert code == 0, text
    assert out.read_bytes()[:4] == b"PAR1"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--region", "Middle"], "unknown region 'Middle'; the map's regions are HighAvg"),
        (["--scorer", "judge-9"], "no scorer named 'judge-9'"),
        (["--paper-subset", "--random-third"], "pick one"),
        (["--random-third", "--region", "HighAvg"], "leave out --region"),
        (["--dataset", "nope"], "no dataset named 'nope'"),
        (["--format", "csv"], "Invalid value for '--format'"),
    ],
)
def test_bad_options_exit_2_with_a_message(
    runner: CliRunner, scored_db: Path, tmp_path: Path, args: list[str], message: str
) -> None:
    out = tmp_path / "x.jsonl"
    code, text = run(runner, "export", str(out), "--db", str(scored_db), *args)
    assert code == 2
    assert message in text
    assert "Traceback" not in text
    assert not out.exists()


def test_bad_outputs_exit_2(runner: CliRunner, scored_db: Path, tmp_path: Path) -> None:
    cases = [
        (tmp_path, "is a folder"),
        (tmp_path / "missing" / "x.jsonl", "does not exist; create it first"),
        (shared_file(ALPACA), "never overwrites its input"),
        (scored_db, "never overwrites its input"),
        (tmp_path / "x.parquet.gz", "drop the .gz"),
    ]
    for out, message in cases:
        code, text = run(runner, "export", str(out), "--db", str(scored_db))
        assert code == 2, (out, text)
        assert message in text, text


def test_no_scorer_and_no_map_exit_2(runner: CliRunner, db_path: Path, tmp_path: Path) -> None:
    data = tmp_path / "plain.jsonl"
    data.write_text(
        "\n".join(
            json.dumps({"prompt": f"q{i}", "responses": [f"a{i}", f"b{i}", f"c{i}"]})
            for i in range(9)
        )
        + "\n"
    )
    assert run(runner, "ingest", str(data), "--db", str(db_path))[0] == 0
    out = tmp_path / "x.jsonl"
    code, text = run(runner, "export", str(out), "--db", str(db_path), "--paper-subset")
    assert code == 2 and "no scorer in this database yet" in text
    # the annotations scorer finds no rating here, so nothing lands on its map
    run(runner, "score", "--scorer", "annotations", "--db", str(db_path))
    code, text = run(runner, "export", str(out), "--db", str(db_path), "--paper-subset")
    assert code == 2 and "no map" in text
    # without a selection the export goes ahead; unrated multi-response samples give no pair
    code, text = run(runner, "export", str(out), "--db", str(db_path), "--format", "original")
    assert code == 0 and "9 records (original)" in text
    code, text = run(runner, "export", str(out), "--db", str(db_path))
    assert code == 0 and "0 records (trl)" in text and "9 unscored" in text


def test_a_missing_database_exits_2(runner: CliRunner, tmp_path: Path) -> None:
    code, text = run(runner, "export", str(tmp_path / "x.jsonl"), "--db", str(tmp_path / "no.db"))
    assert code == 2 and "no database here" in text


def test_help_names_every_format_and_flag(runner: CliRunner) -> None:
    code, text = run(runner, "export", "--help")
    assert code == 0
    for word in (
        "trl-chat",
        "pairs-all",
        "binarized",
        "original",
        "--paper-subset",
        "--random-third",
        "--ignore-decisions",
        "--reviewed-only",
        "--rank-by",
    ):
        assert word in text


def test_nothing_to_export_fails_and_keeps_an_earlier_file(
    runner: CliRunner, db_path: Path, tmp_path: Path
) -> None:
    data = tmp_path / "d.jsonl"
    data.write_text(json.dumps({"prompt": "p", "chosen": "a", "rejected": "b"}) + "\n")
    out = tmp_path / "clean.jsonl"
    out.write_text("an earlier export\n")
    from store import Store

    Store(db_path).close()
    code, text = run(runner, "export", str(out), "--db", str(db_path))
    assert code == 2 and "ingest a file first" in text
    assert run(runner, "ingest", str(data), "--db", str(db_path))[0] == 0
    code, text = run(runner, "export", str(out), "--db", str(db_path), "--reviewed-only")
    assert code == 2 and "no sample has a reviewer's decision" in text
    assert out.read_text() == "an earlier export\n"
    assert not Path(f"{out}.manifest.json").exists()


def test_a_region_with_no_sample_of_the_dataset_fails_before_writing(
    runner: CliRunner, scored_db: Path, tmp_path: Path
) -> None:
    data = tmp_path / "late.jsonl"
    data.write_text(json.dumps({"prompt": "p", "chosen": "a", "rejected": "b"}) + "\n")
    assert run(runner, "ingest", str(data), "--db", str(scored_db))[0] == 0
    out = tmp_path / "late-clean.jsonl"
    for selection in (["--paper-subset"], ["--random-third"]):
        args = ["export", str(out), "--db", str(scored_db), "--dataset", "late", *selection]
        code, text = run(runner, *args)
        assert code == 2 and "no sample of dataset 'late' matches the selection" in text
        assert "on the map of scorer 'annotations'" in text
    assert not out.exists()


def test_two_workers_write_the_same_file(
    runner: CliRunner, scored_db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import auditor.export

    monkeypatch.setattr(auditor.export, "STRIPE", 50)  # many stripes for the second process
    started: list[object] = []
    real = auditor.export._SecondExporter.start
    monkeypatch.setattr(
        auditor.export._SecondExporter, "start", lambda *a: started.append(1) or real(*a)
    )
    files = []
    for workers in ("1", "2"):
        out = tmp_path / f"w{workers}.jsonl"
        args = ["export", str(out), "--db", str(scored_db), "--format", "pairs-all"]
        code, text = run(runner, *args, "--workers", workers)
        assert code == 0, text
        files.append(out.read_bytes())
    assert files[0] == files[1] and files[0].count(b"\n") > 805
    assert started == [1]  # --workers 1 started none
    code, text = run(
        runner, "export", str(tmp_path / "x.jsonl"), "--db", str(scored_db), "--workers", "3"
    )
    assert code == 2 and "--workers" in text
