"""The fast ingest paths give exactly what the plain ones give.

A large JSON-lines file is parsed in worker processes, HH records by a short path
(`hh_pair` and `encode_pair`), and each block comes back as a SQLite image that the writer
copies whole (`Store.merge_image`). A small file goes record by record through the
format's parser and `executemany`. Both must store the same rows.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from auditor.export import ExportOptions, export
from auditor.ingest import IngestError, IngestReport, ingest_file
from auditor.model import ResponseIn, Role, SampleIn
from store import Store, encode_sample
from store.store import _image_rows, images_mergeable, sample_image
from tests.conftest import shared_file


def _rows(store: Store) -> dict[str, list[tuple[Any, ...]]]:
    q = store._query
    return {
        "samples": q("SELECT * FROM samples ORDER BY id"),
        "responses": q("SELECT * FROM responses ORDER BY id"),
        "datasets": q(
            "SELECT name, format, n_records, n_samples, n_responses, n_rejects FROM datasets"
        ),
    }


def _both(tmp_path: Path, path: Path, **kw: Any) -> tuple[IngestReport, IngestReport, Path]:
    with Store(tmp_path / "serial.db") as a, Store(tmp_path / "parallel.db") as b:
        serial = ingest_file(a, path, workers=1, **kw)
        rejects = Path(str(path) + ".rejects.jsonl")
        serial_rejects = rejects.read_bytes() if rejects.exists() else None
        parallel = ingest_file(b, path, workers=2, parallel_min_bytes=0, **kw)
        parallel_rejects = rejects.read_bytes() if rejects.exists() else None
        assert serial_rejects == parallel_rejects
        ra, rb = _rows(a), _rows(b)
    for table in ra:
        assert len(ra[table]) == len(rb[table]), table
        for x, y in zip(ra[table], rb[table], strict=True):
            assert x == y, table
    return serial, parallel, rejects


@pytest.mark.parametrize(
    "relative",
    [
        "hh-rlhf/harmless-base-test.jsonl",
        "hh-helpful-messages/anthropic_helpful_0521.jsonl",
        "ultrafeedback-binarized-trl/processed_train_clean.jsonl",
        "ultrafeedback-binarized-argilla/ultrafeedback_sample_1k.jsonl",
        "alpacaeval-multi/alpacaeval_8models_gpt4turbo_judged.jsonl.gz",
    ],
)
def test_parallel_ingest_stores_what_serial_ingest_stores(tmp_path: Path, relative: str) -> None:
    path = shared_file(relative)
    serial, parallel, _ = _both(tmp_path, path)
    assert serial.samples > 100
    assert (serial.samples, serial.responses, serial.flagged) == (
        parallel.samples,
        parallel.responses,
        parallel.flagged,
    )


def _hh(prefix: str, chosen: str, rejected: str, **extra: Any) -> str:
    return json.dumps({"chosen": prefix + chosen, "rejected": prefix + rejected, **extra})


def test_hh_short_path_matches_the_parser_on_awkward_records(tmp_path: Path) -> None:
    turn = "\n\nHuman: What is 2+2?\n\nAssistant:"
    multi = "\n\nHuman: hi\n\nAssistant: hello\n\nHuman: and now?\n\nAssistant:"
    lines = [
        _hh(turn, " 4", " 5"),
        _hh(multi, " fine", " bad"),
        _hh(turn, " same", " same"),  # identical responses: kept, flagged
        _hh(turn, "", " x"),  # an empty response: flagged
        _hh(turn, " ", " "),  # identical and empty
        _hh(turn, "no space", "  two spaces"),
        _hh(turn.lstrip("\n"), " starts with Human:", " too"),
        _hh(turn, " 4", " 5", source="extra key: the parser's path"),
        json.dumps({"chosen": turn + " 4", "rejected": True}),  # not a transcript: rejected
        # the transcripts part before the last turn: compared turn by turn
        json.dumps(
            {"chosen": multi + " a", "rejected": "\n\nHuman: hi\n\nAssistant: no\n\nHuman: b"}
        ),
        "",
        "   ",
        _hh(turn, " crlf", " line") + "\r",
        '{"chosen": "broken',  # not JSON
        "[1, 2]",  # not an object
        json.dumps({"chosen": "no transcript", "rejected": "at all"}),
        _hh(turn, " café ☕", " naïve \u2028 line"),
    ]
    path = tmp_path / "awkward.jsonl"
    path.write_bytes(("\n".join(lines * 40) + "\n").encode("utf-8"))
    serial, parallel, rejects = _both(tmp_path, path, skip_invalid=True)
    assert serial.records == parallel.records == 15 * 40
    assert serial.rejects == parallel.rejects == 4 * 40
    assert serial.flagged == parallel.flagged
    assert serial.flagged == {
        "identical_responses": 80,
        "empty_response": 80,
        "diverges_early": 40,
    }
    assert rejects.read_bytes().count(b"\n") == 4 * 40
    with Store(tmp_path / "parallel.db") as s:
        crlf = s.sample(s._query("SELECT id FROM samples WHERE row = 13")[0][0])
        assert crlf is not None
        assert crlf["record"] == _hh(turn, " crlf", " line")  # the CR is not the record's
        assert [r["text"] for r in crlf["responses"]] == ["crlf", "line"]
        two = s.sample(2)
        assert two is not None and len(two["conversation"]) == 3


def test_a_one_turn_conversation_is_stored_once(tmp_path: Path) -> None:
    one = [{"role": "user", "content": "only the prompt"}]
    two = [*one, {"role": "assistant", "content": "a"}, {"role": "user", "content": "b"}]
    system = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "q"}]
    with Store(tmp_path / "a.db") as store, store.transaction():
        ds = store.add_dataset(name="d", source_path="x", format="trl", content_hash="h")
        responses = [ResponseIn("c", Role.CHOSEN), ResponseIn("r", Role.REJECTED)]
        store.add_samples(
            ds, [SampleIn(i, conv, responses, "{}") for i, conv in enumerate([one, two, system])]
        )
    with Store(tmp_path / "a.db") as store:
        stored = store._query("SELECT conversation, prompt FROM samples ORDER BY id")
        assert stored[0] == ("", "only the prompt")
        assert json.loads(stored[1][0]) == two and stored[1][1] == "b"
        assert json.loads(stored[2][0]) == system and stored[2][1] == "q"
        for sid, conv in enumerate([one, two, system], start=1):
            sample = store.sample(sid)
            assert sample is not None and sample["conversation"] == conv
        assert store.sample_conversations([1, 2, 3]) == {1: one, 2: two, 3: system}
        pending = store.pending_responses(store.scorer("s", "judge", {"k": 1}).id)
        assert [p.conversation for p in pending[::2]] == [one, two, system]


def test_an_older_database_with_one_turn_json_exports_the_same(tmp_path: Path) -> None:
    """Databases written before one-turn prompts were stored once hold them as JSON."""
    path = shared_file("ultrafeedback-binarized-trl/processed_eval_clean.jsonl")
    db = tmp_path / "a.db"
    with Store(db) as store:
        ingest_file(store, path)
        for fmt in ("trl", "trl-chat"):
            export(store, tmp_path / f"new-{fmt}.jsonl", ExportOptions(format=fmt))
        assert store._query("SELECT count(*) FROM samples WHERE conversation != ''")[0][0] == 0
        with store.transaction():
            store.conn.execute(
                "UPDATE samples SET conversation ="
                " json_array(json_object('role', 'user', 'content', prompt))"
            )
        heads = [h[3] for chunk in store.export_pair_lines(("", "", "", "")) for h in chunk]
        assert None not in heads  # still read as plain pairs, one row each
        for fmt in ("trl", "trl-chat"):
            export(store, tmp_path / f"old-{fmt}.jsonl", ExportOptions(format=fmt))
    for fmt in ("trl", "trl-chat"):
        new = (tmp_path / f"new-{fmt}.jsonl").read_text().splitlines()
        old = (tmp_path / f"old-{fmt}.jsonl").read_text().splitlines()
        assert len(new) == len(old) > 100
        assert [json.loads(x) for x in new] == [json.loads(x) for x in old]


def test_an_image_that_cannot_be_attached_is_inserted_row_by_row(tmp_path: Path) -> None:
    samples = [
        SampleIn(
            i,
            [{"role": "user", "content": f"p{i}"}],
            [ResponseIn(f"c{i}", Role.CHOSEN, "m", 4.0, {"h": 4}), ResponseIn("r", Role.NONE)],
            f'{{"i": {i}}}'.encode(),
            source="src",
            flags=["identical_responses"] if i % 2 else [],
        )
        for i in range(1, 30)
    ]
    encoded = [encode_sample(s) for s in samples]
    records = [s.record for s in samples]
    image = sample_image(encoded, records)
    assert _image_rows(image) == (encoded, records)
    second = sample_image(encoded[:5], [b"{}"] * 5)
    with Store(tmp_path / "a.db") as a, Store(tmp_path / "b.db") as b:
        for store in (a, b):
            with store.bulk(), store.transaction():
                ds = store.add_dataset(name="d", source_path="x", format="trl", content_hash="h")
                before = [
                    SampleIn(100 + i, s.conversation, s.responses, b"{}")
                    for i, s in enumerate(samples[:3])
                ]
                store.add_samples(ds, before)  # the images go after these
                if store is a:  # two images in one transaction, as an ingest merges them
                    assert store.merge_image(ds, image) == 2 * len(samples)
                    ds2 = store.add_dataset(
                        name="e", source_path="y", format="trl", content_hash="i"
                    )
                    assert store.merge_image(ds2, second) == 10
                else:  # row by row, as when this SQLite cannot merge images
                    store.add_encoded(ds, *_image_rows(image))
                    ds2 = store.add_dataset(
                        name="e", source_path="y", format="trl", content_hash="i"
                    )
                    store.add_encoded(ds2, *_image_rows(second))
        assert _rows(a) == _rows(b)


def test_blocks_are_merged_whole_where_sqlite_allows_and_row_by_row_where_not(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import auditor.ingest
    import store.store

    path = shared_file("hh-rlhf/harmless-base-test.jsonl")  # 3.3 MB: two blocks
    calls: list[int] = []
    real = store.store._image_rows
    monkeypatch.setattr(store.store, "_image_rows", lambda image: calls.append(1) or real(image))
    with Store(tmp_path / "fast.db") as fast:
        ingest_file(fast, path, workers=2, parallel_min_bytes=0)
        assert calls == [] or not images_mergeable()
        fast_rows = _rows(fast)
    monkeypatch.setattr(auditor.ingest, "images_mergeable", lambda: False)
    with Store(tmp_path / "slow.db") as slow:
        ingest_file(slow, path, workers=2, parallel_min_bytes=0)
        assert _rows(slow) == fast_rows


def test_a_lone_surrogate_escape_is_a_bad_record_not_a_crash(tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl"
    path.write_text(
        '{"prompt": "p", "chosen": "a\\ud800b", "rejected": "r"}\n'
        '{"prompt": "p", "chosen": "fine \\ud83d\\ude00", "rejected": "r"}\n'
    )
    with Store(tmp_path / "a.db") as store:
        with pytest.raises(IngestError, match=r"s.jsonl:1: .*surrogate.*U\+D800"):
            ingest_file(store, path)
        report = ingest_file(store, path, skip_invalid=True)
        assert (report.samples, report.rejects) == (1, 1)
        sample = store.sample(1)
        assert sample is not None and sample["responses"][0]["text"] == "fine \U0001f600"
