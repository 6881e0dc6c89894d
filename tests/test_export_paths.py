"""The fast export paths write exactly what the plain one writes.

Plain labelled pairs come as lines half-built by SQLite (`Store.export_pair_lines`);
everything else goes through `ExportSample` rows. A large JSON Lines export is shared with
a second process, stripe by stripe (`_SecondExporter`). Both must give the same bytes and the
same manifest as one process reading every sample whole.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

import auditor.export as export_module
from auditor.export import ExportError, ExportOptions, export
from auditor.ingest import ingest_file
from auditor.scorers.annotations import score_annotations
from store import Store
from tests.conftest import shared_file

UF_TRL = "ultrafeedback-binarized-trl/processed_eval_clean.jsonl"
HH = "hh-rlhf/harmless-base-test.jsonl"
ALPACA = "alpacaeval-multi/alpacaeval_8models_gpt4turbo_judged.jsonl.gz"


@pytest.fixture
def mixed(tmp_path: Path) -> Store:
    """One-turn pairs, multi-turn pairs, multi-response samples, decisions of every kind,
    and ratings that print differently in SQLite and Python."""
    store = Store(tmp_path / "mixed.db")
    for relative in (UF_TRL, HH, ALPACA):
        ingest_file(store, shared_file(relative))
    score_annotations(store)
    pairs = store.sample_ids("processed_eval_clean")
    with store.transaction():
        store.conn.execute(
            "UPDATE responses SET rating = CASE idx WHEN 0 THEN 0.1 + 0.2 ELSE 1e300 * 10 END"
            " WHERE sample_id = ?",
            (pairs[5],),
        )
        store.conn.execute("UPDATE responses SET rating = NULL WHERE sample_id = ?", (pairs[6],))
    store.decide(pairs[0], "flip", "ana")
    store.decide(pairs[1], "drop", "ana")
    store.decide(pairs[2], "keep", "bo")
    store.decide(pairs[3], "note", "bo", note="looks fine")
    hh = store.sample_ids("harmless-base-test")
    store.decide(hh[10], "flip", "ana")
    multi = store.sample_ids("alpacaeval_8models_gpt4turbo_judged")
    store.decide(multi[0], "keep", "ana", best_idx=3)
    return store


def _manifest(out: Path) -> dict[str, Any]:
    m = json.loads(Path(f"{out}.manifest.json").read_text())
    for key in ("created_at", "seconds", "command_line", "rebuild_with"):
        m.pop(key)
    m["output"].pop("path")
    return m


def _general_path_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(export_module, "_PAIR_HEADS", {})


OPTIONS = [
    ExportOptions(format="trl"),
    ExportOptions(format="trl-chat"),
    ExportOptions(format="pairs-all"),
    ExportOptions(format="binarized", seed=3),
    ExportOptions(format="trl", apply_decisions=False),
    ExportOptions(format="trl", reviewed_only=True),
    ExportOptions(format="trl", regions=("HighAvg", "HighVar")),
    ExportOptions(format="trl-chat", random_third=True, seed=5),
]


@pytest.mark.parametrize("options", OPTIONS, ids=lambda o: o.as_cli("out.jsonl")[14:])
def test_pair_lines_from_sqlite_match_the_general_path(
    mixed: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, options: ExportOptions
) -> None:
    fast = tmp_path / "fast.jsonl"
    export(mixed, fast, options, workers=1)
    with monkeypatch.context() as m:
        _general_path_only(m)
        slow = tmp_path / "slow.jsonl"
        export(mixed, slow, options, workers=1)
    assert fast.read_bytes() == slow.read_bytes()
    assert _manifest(fast) == _manifest(slow)
    rows = [json.loads(line) for line in fast.read_text().splitlines()]
    assert len(rows) == _manifest(fast)["counts"]["records_out"] >= 4


@pytest.mark.parametrize(
    "options",
    [*OPTIONS, ExportOptions(format="original", dataset="harmless-base-test")],
    ids=lambda o: o.as_cli("out.jsonl")[14:],
)
def test_two_processes_write_what_one_writes(
    mixed: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, options: ExportOptions
) -> None:
    monkeypatch.setattr(export_module, "STRIPE", 97)  # many stripes, each side several
    one, two = tmp_path / "one.jsonl", tmp_path / "two.jsonl"
    calls: list[int] = []
    export(mixed, one, options, workers=1)
    export(mixed, two, options, workers=2, on_progress=lambda done, total: calls.append(done))
    assert one.read_bytes() == two.read_bytes()
    assert _manifest(one) == _manifest(two)
    assert calls == sorted(calls) and calls[-1] == _manifest(two)["counts"]["in_selected_regions"]
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_two_processes_write_one_gzip_stream(
    mixed: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(export_module, "STRIPE", 97)
    # the first process holds one chunk of the second's lines at a time: it waits, in turn
    monkeypatch.setattr(export_module, "_INBOX_BYTES", 1)
    one, two = tmp_path / "one.jsonl.gz", tmp_path / "two.jsonl.gz"
    export(mixed, one, ExportOptions(format="pairs-all"), workers=1)
    export(mixed, two, ExportOptions(format="pairs-all"), workers=2)
    assert gzip.decompress(one.read_bytes()) == gzip.decompress(two.read_bytes())


def test_a_failing_second_process_is_reported_and_stopped(mixed: Store, tmp_path: Path) -> None:
    plan = export_module._plan(mixed, tmp_path / "x.jsonl", ExportOptions())
    gone = SimpleNamespace(file=tmp_path / "no such folder" / "audit.db")
    second = export_module._SecondExporter.start(gone, plan, ExportOptions(), [(0, None)])  # type: ignore[arg-type]
    assert second is not None
    try:
        with pytest.raises(ExportError, match="no such folder"):
            list(second.stripe())
    finally:
        second.close()
    assert second._proc.poll() is not None


def test_an_interrupted_two_process_export_leaves_the_earlier_file(
    mixed: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(export_module, "STRIPE", 97)
    out = tmp_path / "clean.jsonl"
    out.write_text("earlier export\n")
    helpers: list[Any] = []
    real = export_module._SecondExporter.start

    def keep(*args: Any) -> Any:
        helpers.append(real(*args))
        return helpers[-1]

    monkeypatch.setattr(export_module._SecondExporter, "start", keep)

    def interrupt(done: int, total: int) -> None:
        if done > 300:  # the helper has had stripes by then
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        export(mixed, out, ExportOptions(), on_progress=interrupt, workers=2)
    assert out.read_text() == "earlier export\n"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
    assert helpers and helpers[0]._proc.poll() is not None  # stopped, not left running


def test_a_plain_pair_with_extra_responses_is_not_taken_for_one(tmp_path: Path) -> None:
    """A third response (no format makes one for a pair, but a database may hold one)."""
    path = tmp_path / "p.jsonl"
    path.write_text(
        "".join(
            json.dumps({"prompt": f"p{i}", "chosen": f"c{i}", "rejected": f"r{i}"}) + "\n"
            for i in range(5)
        )
    )
    with Store(tmp_path / "a.db") as store:
        ingest_file(store, path)
        with store.transaction():
            store.conn.execute(
                "INSERT INTO responses (sample_id, idx, role, text) VALUES (3, 2, 'none', 'x')"
            )
        heads = [row for chunk in store.export_pair_lines(("", "", "", "")) for row in chunk]
        assert [h[3] is None for h in heads] == [False, False, True, False, False]
        fast, slow = tmp_path / "fast.jsonl", tmp_path / "slow.jsonl"
        export(store, fast, ExportOptions(format="pairs-all"), workers=1)
        with pytest.MonkeyPatch.context() as m:
            _general_path_only(m)
            export(store, slow, ExportOptions(format="pairs-all"), workers=1)
        assert fast.read_bytes() == slow.read_bytes()


def _count_second_processes(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    started: list[Any] = []
    real = export_module._SecondExporter.start

    def keep(*args: Any) -> Any:
        started.append(real(*args))
        return started[-1]

    monkeypatch.setattr(export_module._SecondExporter, "start", keep)
    return started


def test_a_database_another_process_cannot_see_is_exported_by_one(
    mixed: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In memory, or inside an open transaction: a second process would read another
    database, or miss what is not committed."""
    monkeypatch.setattr(export_module, "STRIPE", 97)
    started = _count_second_processes(monkeypatch)
    one = tmp_path / "one.jsonl"
    report = export(mixed, one, ExportOptions(), workers=1)
    with mixed.transaction():
        mixed.conn.execute("UPDATE samples SET source = 'x' WHERE id = 1")
        inside = tmp_path / "inside.jsonl"
        export(mixed, inside, ExportOptions(), workers=2)
    assert inside.read_bytes() == one.read_bytes()
    memory = Store(":memory:")
    path = tmp_path / "p.jsonl"
    path.write_text(
        "".join(
            json.dumps({"prompt": f"p{i}", "chosen": "c", "rejected": "r"}) + "\n"
            for i in range(500)
        )
    )
    ingest_file(memory, path)
    out = tmp_path / "memory.jsonl"
    assert export(memory, out, ExportOptions(), workers=2).records_out == 500
    assert started == [] and report.records_out > 500


def test_the_second_process_opens_the_database_by_its_full_path(
    mixed: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(export_module, "STRIPE", 97)
    started = _count_second_processes(monkeypatch)
    monkeypatch.chdir(tmp_path)
    relative = Store("mixed.db")  # the fixture's file, by a relative path
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # as a notebook's %cd would
    two, one = tmp_path / "two.jsonl", tmp_path / "one.jsonl"
    export(relative, two, ExportOptions(), workers=2)
    export(relative, one, ExportOptions(), workers=1)
    assert two.read_bytes() == one.read_bytes()
    assert len(started) == 1 and list(elsewhere.iterdir()) == []
