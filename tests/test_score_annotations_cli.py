"""`auditor score --scorer annotations` messages when there is nothing to score."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from auditor.cli import main
from store import Store


def run(runner: CliRunner, *args: str) -> tuple[int, str]:
    result = runner.invoke(main, list(args))
    return result.exit_code, result.output


def test_annotations_on_an_empty_or_unrated_database_say_what_to_do(
    runner: CliRunner, db_path: Path, tmp_path: Path
) -> None:
    Store(db_path).close()
    code, out = run(runner, "score", "--db", str(db_path), "--scorer", "annotations")
    assert code == 1 and "no responses yet" in out and "--field auto" not in out
    data = tmp_path / "plain.jsonl"
    data.write_text(json.dumps({"prompt": "p", "chosen": "a", "rejected": "b"}) + "\n")
    assert run(runner, "ingest", str(data), "--db", str(db_path))[0] == 0
    code, out = run(runner, "score", "--db", str(db_path), "--scorer", "annotations")
    assert code == 1 and "score with judge or reference" in out and "--field auto" not in out
