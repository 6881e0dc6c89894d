"""Shared fixtures: paths to the shared real data, temporary stores, the CLI runner."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from store import Store

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "data"


def shared_file(relative: str) -> Path:
    """A file of ../shared/data, or skip the test with a reason when it is absent."""
    path = SHARED / relative
    if not path.exists():
        pytest.skip(f"real data not present: {path} (only in the project's shared folder)")
    return path


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "audit.db"


@pytest.fixture
def store(db_path: Path) -> Iterator[Store]:
    s = Store(db_path)
    yield s
    s.close()


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


# -- scoring ---------------------------------------------------------------------------


@pytest.fixture
def fake_openai(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """An OpenAI-compatible server on 127.0.0.1; the environment points the client at it."""
    from tests.fake_openai import FakeOpenAI

    server = FakeOpenAI().start()
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-secret-key-1234")
    monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
    monkeypatch.setenv("AUDITOR_BACKOFF_BASE", "0.01")
    monkeypatch.delenv("AUDITOR_PRICES", raising=False)
    yield server
    server.stop()


def make_scoring_db(
    path: Path,
    n_samples: int,
    *,
    responses: Any = None,
    reference: Any = None,
) -> Path:
    """A database of ``n_samples`` pairs; ``responses(i)`` / ``reference(i)`` give the texts."""
    from auditor.model import ResponseIn, Role, SampleIn

    def default_responses(i: int) -> list[str]:
        return [f"A good answer to question {i}. [[q={1 + i % 10}]]", f"Meh {i}."]

    texts_of = responses or default_responses
    with Store(path) as s:
        dataset = s.add_dataset(
            name="scoring", source_path="generated", format="jsonl", content_hash=str(path)
        )
        samples = [
            SampleIn(
                row=i,
                conversation=[{"role": "user", "content": f"Question {i}: what is {i} + {i}?"}],
                responses=[
                    ResponseIn(text, Role.CHOSEN if j == 0 else Role.REJECTED)
                    for j, text in enumerate(texts_of(i))
                ],
                record="{}",
                reference=reference(i) if reference else None,
            )
            for i in range(n_samples)
        ]
        s.add_samples(dataset, samples)
    return path
