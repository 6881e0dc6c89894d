"""Exactly once: kill -9 and Ctrl-C mid-run, then resume; Batch API jobs resumed, not repaid."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from auditor.cli import main
from tests.conftest import ROOT, make_scoring_db
from tests.fake_openai import intended_score


def _spawn(db: Path, fake: Any, *args: str) -> subprocess.Popen[str]:
    env = {
        **os.environ,
        "OPENAI_API_KEY": "sk-test",
        "OPENAI_BASE_URL": fake.base_url,
        "AUDITOR_BACKOFF_BASE": "0.01",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "auditor", "score", "--db", str(db), "--scorer", "judge",
         "--model", "gpt-4o-mini", "--per-call", "response", *args],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip


def _wait_for(predicate: Any, timeout: float = 30.0) -> None:
    end = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < end, "timed out waiting"
        time.sleep(0.02)


def _rows(db: Path) -> list[tuple[Any, ...]]:
    with sqlite3.connect(db) as c:
        return c.execute(
            "SELECT r.text, s.value, s.status FROM responses r"
            " LEFT JOIN scores s ON s.response_id = r.id ORDER BY r.id"
        ).fetchall()


def test_kill_9_mid_run_then_resume_scores_everything_exactly_once(
    fake_openai: Any, tmp_path: Path
) -> None:
    n = 60
    db = make_scoring_db(tmp_path / "a.db", n // 2)
    fake_openai.latency = 0.05
    concurrency = 4
    proc = _spawn(db, fake_openai, "--concurrency", str(concurrency))
    _wait_for(lambda: sum(fake_openai.paid.values()) >= 20)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_at = _rows(db)
    stored = [r for r in killed_at if r[2] is not None]
    assert 15 <= len(stored) < n
    assert all(r[2] == "ok" and r[1] == intended_score(r[0]) for r in stored)  # none partial

    again = _spawn(db, fake_openai, "--concurrency", str(concurrency))
    out, _ = again.communicate(timeout=60)
    assert again.returncode == 0, out
    assert f"{n - len(stored)} scored this run" in out
    rows = _rows(db)
    assert len(rows) == n  # one row per response: no duplicate
    assert all(r[2] == "ok" and r[1] == intended_score(r[0]) for r in rows)
    # paid twice at most for what was in flight at the kill
    repaid = sum(count - 1 for count in fake_openai.paid.values())
    assert len(fake_openai.paid) == n and repaid <= concurrency


def test_ctrl_c_stops_cleanly_and_says_how_to_resume(fake_openai: Any, tmp_path: Path) -> None:
    db = make_scoring_db(tmp_path / "a.db", 30)
    fake_openai.latency = 0.05
    proc = _spawn(db, fake_openai, "--concurrency", "2")
    _wait_for(lambda: sum(fake_openai.paid.values()) >= 6)
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 130, out
    assert "Traceback" not in out
    assert "Resume with: auditor score --db" in out
    done = [r for r in _rows(db) if r[2] is not None]
    assert all(r[2] == "ok" for r in done) and 0 < len(done) < 60


def test_batch_is_submitted_once_and_collected_by_a_later_run(
    fake_openai: Any, tmp_path: Path
) -> None:
    db = make_scoring_db(tmp_path / "a.db", 5)
    fake_openai.batch_polls_to_finish = 10**9  # still running for now

    def run(*args: str) -> Any:
        return CliRunner().invoke(
            main,
            ["score", "--db", str(db), "--scorer", "judge", "--model", "gpt-4o", "--batch",
             "--poll-interval", "0.01", *args],
        )  # fmt: skip

    first = run("--no-wait")
    assert first.exit_code == 0, first.output
    assert "submitted 5 requests" in first.output and "collect it later" in first.output
    assert len(fake_openai.batches) == 1 and fake_openai.requests == 0
    with sqlite3.connect(db) as c:
        assert c.execute("SELECT id, request_count FROM batches").fetchall() == [("batch_1", 5)]
    second = run("--no-wait")  # the batch is still running: nothing new is submitted
    assert "submitted" not in second.output and len(fake_openai.batches) == 1
    fake_openai.batch_polls_to_finish = 0
    third = run()
    assert third.exit_code == 0, third.output
    assert "10 scored this run" in third.output
    rows = _rows(db)
    assert all(r[2] == "ok" and r[1] == intended_score(r[0]) for r in rows)
    assert len(fake_openai.batches) == 1 and set(fake_openai.paid.values()) == {1}
    with sqlite3.connect(db) as c:
        assert c.execute("SELECT status FROM batches").fetchall() == [("stored",)]
        # half price: gpt-4o at $1.25 / $5 per 1M tokens in the Batch API
        cost, prompt, completion = c.execute(
            "SELECT total(cost), total(prompt_tokens), total(completion_tokens) FROM scores"
        ).fetchone()
    assert cost == pytest.approx((prompt * 1.25 + completion * 5) / 1e6)
    assert "0 scored this run" in run().output


def test_batch_submits_only_what_fits_the_budget(fake_openai: Any, tmp_path: Path) -> None:
    db = make_scoring_db(tmp_path / "a.db", 10)
    prices = tmp_path / "prices.json"
    prices.write_text('{"gpt-4o": {"input": 100, "output": 100}}', encoding="utf-8")
    result = CliRunner().invoke(
        main,
        ["score", "--db", str(db), "--scorer", "judge", "--model", "gpt-4o", "--batch",
         "--no-wait", "--per-call", "response", "--prices", str(prices), "--budget", "0.5"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "stopped before passing the budget" in result.output
    with sqlite3.connect(db) as c:
        (count,) = c.execute("SELECT request_count FROM batches").fetchone()
    # each request may cost up to (prompt + 512 tokens) x $50 per 1M at batch price
    assert 0 < count < 20
