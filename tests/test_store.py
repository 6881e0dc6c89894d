"""The store: migrations, decisions with undo/redo, threads and two processes at once."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest

import store.migrations as migrations
from auditor.model import Action, ResponseIn, Role, SampleIn, ScoreIn
from store import Store, StoreError, default_db_path

ROOT = Path(__file__).resolve().parent.parent


def _fill(s: Store, n: int = 10) -> None:
    with s.transaction():
        ds = s.add_dataset(name="d", source_path="/x", format="trl", content_hash=f"h{n}")
        s.add_samples(
            ds,
            [
                SampleIn(
                    row=i + 1,
                    conversation=[{"role": "user", "content": f"q{i}"}],
                    responses=[
                        ResponseIn(f"a{i}", Role.CHOSEN, rating=2.0),
                        ResponseIn(f"b{i}", Role.REJECTED, rating=1.0),
                    ],
                    record="{}",
                )
                for i in range(n)
            ],
        )


def test_db_path_precedence(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AUDITOR_DB", raising=False)
    assert default_db_path(None) == Path("auditor.db")
    monkeypatch.setenv("AUDITOR_DB", "/tmp/env.db")
    assert default_db_path(None) == Path("/tmp/env.db")
    assert default_db_path("x.db") == Path("x.db")


def test_older_database_upgrades_on_open(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db = tmp_path / "old.db"
    with Store(db) as s:
        _fill(s)
    newer = [*migrations.MIGRATIONS, ("999_test_column", "ALTER TABLE samples ADD COLUMN x TEXT;")]
    monkeypatch.setattr(migrations, "MIGRATIONS", newer)
    with Store(db) as s:
        names = [r[0] for r in s.conn.execute("SELECT name FROM _migrations ORDER BY name")]
        assert names[-1] == "999_test_column"
        assert s.count_samples() == 10  # data survives the upgrade
        cols = {r[1] for r in s.conn.execute("PRAGMA table_info(samples)")}
        assert "x" in cols
    with Store(db) as s:  # applied once only
        assert s.conn.execute("SELECT count(*) FROM _migrations").fetchone()[0] == len(newer)


def test_failed_migration_leaves_database_unchanged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "a.db"
    Store(db).close()
    bad = [*migrations.MIGRATIONS, ("998_bad", "CREATE TABLE t (a); SELECT * FROM nowhere;")]
    monkeypatch.setattr(migrations, "MIGRATIONS", bad)
    with pytest.raises(Exception, match="nowhere"):
        Store(db)
    monkeypatch.undo()
    with Store(db) as s:
        tables = {r[0] for r in s.conn.execute("SELECT name FROM sqlite_master")}
        assert "t" not in tables


def test_not_a_database(tmp_path: Path) -> None:
    path = tmp_path / "junk.db"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(Exception, match="not a database"):
        Store(path)


def test_decisions_undo_redo_survive_restart(tmp_path: Path) -> None:
    db = tmp_path / "a.db"
    with Store(db) as s:
        _fill(s)
        s.decide(1, Action.FLIP, "ana")
        s.decide(2, Action.DROP, "ana")
        s.decide(2, Action.NOTE, "ana", note="off-topic")
        s.decide(3, Action.KEEP, "bo")
        assert s.decision(2).action == "drop" and s.decision(2).note == "off-topic"
        assert s.undo("ana") == 2  # the note goes first
        assert s.decision(2).note is None and s.decision(2).action == "drop"
    with Store(db) as s:  # restart
        assert s.undo("ana") == 2
        assert s.decision(2).action is None
        assert s.redo("ana") == 2
        assert s.decision(2).action == "drop"
        assert s.redo("ana") == 2
        assert s.decision(2).note == "off-topic"
        assert s.redo("ana") is None  # nothing left to redo
        assert s.decision(3).action == "keep"  # another reviewer's work is untouched
        assert s.last_position("ana") == 2
        history = s.decision_history(2)
        assert [h["action"] for h in history] == ["drop", "note", "undo", "undo", "redo", "redo"]
    with Store(db) as s:
        s.undo("ana")
        s.decide(5, Action.KEEP, "ana")  # a new decision ends the redo chain
        assert s.redo("ana") is None
        assert set(s.decisions()) == {1, 2, 3, 5}


def test_decide_unknown_sample(store: Store) -> None:
    with pytest.raises(StoreError, match="no sample"):
        store.decide(99, Action.KEEP, "ana")


def test_scores_exactly_once(store: Store) -> None:
    _fill(store, 3)
    sc = store.scorer("judge", "judge", {"kind": "judge", "model": "m"})
    assert store.scorer("judge", "judge", {"model": "m", "kind": "judge"}).id == sc.id
    store.save_scores(
        sc.id, [ScoreIn(1, None, status="failed", error="500"), ScoreIn(2, 7.0, prompt_tokens=10)]
    )
    assert [p.response_id for p in store.pending_responses(sc.id)] == [3, 4, 5, 6]
    assert [p.response_id for p in store.pending_responses(sc.id, retry_failed=True)] == [
        1,
        3,
        4,
        5,
        6,
    ]
    store.save_scores(sc.id, [ScoreIn(1, 5.0), ScoreIn(2, 1.0)])  # 2 is ok already: kept
    rows = dict(store.conn.execute("SELECT response_id, value FROM scores").fetchall())
    assert rows == {1: 5.0, 2: 7.0}
    attempts = store.conn.execute("SELECT attempts FROM scores WHERE response_id=1").fetchone()
    assert attempts[0] == 2


def test_store_from_worker_threads(store: Store) -> None:
    _fill(store, 50)
    errors: list[BaseException] = []

    def work(reviewer: str) -> None:
        try:
            for sid in range(1, 51):
                store.decide(sid, Action.KEEP, reviewer)
                store.sample(sid)
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(f"r{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(store.decision_history()) == 200


def test_two_processes_write_at_once(tmp_path: Path) -> None:
    db = tmp_path / "shared.db"
    with Store(db) as s:
        _fill(s, 400)
        sc = s.scorer("j", "judge", {"kind": "judge"})
    scorer_code = (
        "from store import Store\nfrom auditor.model import ScoreIn\n"
        f"s = Store({str(db)!r})\n"
        "for i in range(1, 801, 4):\n"
        f"    s.save_scores({sc.id}, [ScoreIn(j, 1.0) for j in range(i, i + 4)])\n"
    )
    reviewer_code = (
        "from store import Store\n"
        f"s = Store({str(db)!r})\n"
        "for i in range(1, 401):\n"
        "    s.decide(i, 'keep', 'ana')\n"
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", c], cwd=ROOT, stderr=subprocess.PIPE)
        for c in (scorer_code, reviewer_code)
    ]
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err.decode()
    with Store(db) as s:
        assert s.score_counts(sc.id)["ok"] == 800
        assert len(s.decisions()) == 400


def test_another_programs_database_is_refused_and_left_as_it_was(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "app.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE users (id INTEGER, name TEXT)")
    conn.commit()
    conn.close()
    before = path.read_bytes()
    with pytest.raises(StoreError, match="another program"):
        Store(path)
    assert path.read_bytes() == before
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    assert [r[0] for r in conn.execute("SELECT name FROM sqlite_master")] == ["users"]


def test_a_hash_prefix_naming_two_scorers_is_refused(tmp_path: Path) -> None:
    with Store(tmp_path / "a.db") as store:
        rows = [store.scorer(f"s{i}", "test", {"kind": "test", "i": i}) for i in range(40)]
        by_first: dict[str, list[str]] = {}
        for r in rows:
            if not r.config_hash[0].isdigit() or r.config_hash[0] == "0":  # not also an id
                by_first.setdefault(r.config_hash[0], []).append(r.name)
        prefix, names = next((p, n) for p, n in by_first.items() if len(n) > 1)
        with pytest.raises(StoreError, match="more than one scorer"):
            store.find_scorer(prefix)
        assert store.find_scorer(names[0]).name == names[0]
        assert store.find_scorer(rows[3].config_hash).name == "s3"
        assert store.find_scorer(rows[3].config_hash[:12]).name == "s3"


def test_a_database_locked_by_another_writer_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sqlite3

    from click.testing import CliRunner

    from auditor.cli import main

    db = tmp_path / "a.db"
    Store(db).close()
    other = sqlite3.connect(db, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # an ingest in another process, say
    try:
        store = Store(db, timeout=0.1)
        with pytest.raises(StoreError, match="busy"), store.transaction():
            pass
        store.close()
        defaults = {**(Store.__init__.__kwdefaults__ or {}), "timeout": 0.1}
        monkeypatch.setattr(Store.__init__, "__kwdefaults__", defaults)
        data = tmp_path / "d.jsonl"
        data.write_text('{"prompt": "p", "chosen": "a", "rejected": "b"}\n')
        result = CliRunner().invoke(main, ["ingest", str(data), "--db", str(db)])
        assert result.exit_code == 1 and "the database is busy" in result.output
        assert not isinstance(result.exception, sqlite3.Error)
    finally:
        other.execute("ROLLBACK")
        other.close()
