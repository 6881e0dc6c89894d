"""Bad input: a clear message naming file, line and field, exit code 2, nothing kept."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from auditor.cli import main
from store import Store

ROOT = Path(__file__).resolve().parent.parent
GOOD = {"prompt": "p", "chosen": "a", "rejected": "b"}


def _lines(path: Path, records: list[object]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def _ingest(db: Path, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["ingest", "--db", str(db), *args])
    assert not isinstance(result.exception, Exception) or isinstance(
        result.exception, SystemExit
    ), result.exception  # never a traceback
    return result.exit_code, result.stdout, result.stderr


def _samples(db: Path) -> int:
    with Store(db) as s:
        return s.count_samples()


def test_non_utf8_bytes_named_by_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_bytes(
        (json.dumps(GOOD) + "\n").encode()
        + b'{"prompt": "caf\xe9", "chosen": "a", "rejected": "b"}\n'
    )
    code, _, err = _ingest(tmp_path / "a.db", str(path))
    assert code == 2
    assert f"{path}:2" in err and "UTF-8" in err and "0xe9" in err
    assert _samples(tmp_path / "a.db") == 0  # the good first line was not kept either


def test_skip_invalid_writes_rejects_verbatim(tmp_path: Path) -> None:
    bad_bytes = b'{"prompt": "caf\xe9", "chosen": "a", "rejected": "b"}'
    path = tmp_path / "mixed.jsonl"
    path.write_bytes(
        (json.dumps(GOOD) + "\n").encode()
        + bad_bytes
        + b"\n"
        + b'{"prompt": "p", "chosen": null, "rejected": "b"}\n'
        + b"not json at all\n"
        + (json.dumps({**GOOD, "prompt": "q"}) + "\n").encode()
    )
    code, out, _ = _ingest(tmp_path / "a.db", str(path), "--skip-invalid")
    assert code == 0
    assert "2 samples" in out and "3 rejects" in out
    rejects = (tmp_path / "mixed.jsonl.rejects.jsonl").read_bytes().splitlines()
    assert rejects == [
        bad_bytes,
        b'{"prompt": "p", "chosen": null, "rejected": "b"}',
        b"not json at all",
    ]
    assert _samples(tmp_path / "a.db") == 2


def test_truncated_gzip_keeps_nothing(tmp_path: Path) -> None:
    data = gzip.compress(
        "".join(json.dumps({**GOOD, "prompt": f"p{i}"}) + "\n" for i in range(5000)).encode()
    )
    path = tmp_path / "cut.jsonl.gz"
    path.write_bytes(data[: len(data) // 2])
    code, _, err = _ingest(tmp_path / "a.db", str(path))
    assert code == 2
    assert str(path) in err and "truncated" in err
    assert _samples(tmp_path / "a.db") == 0


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.jsonl"
    path.write_text("")
    code, _, err = _ingest(tmp_path / "a.db", str(path))
    assert code == 2 and "empty" in err and str(path) in err
    blank = tmp_path / "blank.jsonl"
    blank.write_text("\n\n  \n")
    code, _, err = _ingest(tmp_path / "a.db", str(blank))
    assert code == 2 and "no records" in err


def test_json_array_given_as_jsonl_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "array.jsonl"
    path.write_text(json.dumps([GOOD, {**GOOD, "prompt": "q"}], indent=2))
    code, out, _ = _ingest(tmp_path / "a.db", str(path))
    assert code == 0 and "2 samples" in out
    with Store(tmp_path / "a.db") as s:
        second = s.sample(2)
    assert second is not None and json.loads(second["record"]) == {**GOOD, "prompt": "q"}
    assert second["row"] == 7  # the line the element starts on


def test_missing_field_and_null_response(tmp_path: Path) -> None:
    path = _lines(tmp_path / "missing.jsonl", [GOOD, GOOD, {"prompt": "p", "chosen": "a"}])
    code, _, err = _ingest(tmp_path / "a.db", str(path), "--format", "trl")
    assert code == 2 and f"{path}:3" in err and "'rejected'" in err and "missing" in err
    path = _lines(tmp_path / "null.jsonl", [GOOD, {"prompt": "p", "chosen": None, "rejected": "b"}])
    code, _, err = _ingest(tmp_path / "a.db", str(path))
    assert code == 2 and f"{path}:2" in err and "'chosen'" in err and "null" in err
    assert "--skip-invalid" in err  # says what to do
    assert _samples(tmp_path / "a.db") == 0


def test_identical_chosen_and_rejected_kept_and_marked(tmp_path: Path) -> None:
    path = _lines(tmp_path / "same.jsonl", [GOOD, {"prompt": "p", "chosen": "x", "rejected": "x"}])
    code, out, _ = _ingest(tmp_path / "a.db", str(path))
    assert code == 0 and "2 samples" in out and "1 identical responses" in out
    with Store(tmp_path / "a.db") as s:
        sample = s.sample(2)
    assert sample is not None and "identical_responses" in sample["flags"]


def test_unknown_format_lists_formats_and_shows_map(tmp_path: Path) -> None:
    path = _lines(tmp_path / "odd.jsonl", [{"question": "q", "answers": ["a", "b"]}])
    code, _, err = _ingest(tmp_path / "a.db", str(path))
    assert code == 2
    assert "could not recognise" in err and "question" in err
    for name in ("trl", "hh-rlhf", "ultrafeedback", "pandalm"):
        assert name in err
    assert "--map prompt=" in err


def test_bad_map_spec_and_missing_file(tmp_path: Path) -> None:
    path = _lines(tmp_path / "d.jsonl", [GOOD])
    code, _, err = _ingest(tmp_path / "a.db", str(path), "--map", "prompt=prompt,chosen=chosen")
    assert code == 2 and "rejected" in err
    code, _, err = _ingest(tmp_path / "a.db", str(tmp_path / "nope.jsonl"))
    assert code == 2 and "no such file" in err


def test_one_bad_file_does_not_stop_the_others(tmp_path: Path) -> None:
    good = _lines(tmp_path / "good.jsonl", [GOOD])
    bad = tmp_path / "bad.jsonl"
    bad.write_text("{oops\n")
    code, out, err = _ingest(tmp_path / "a.db", str(bad), str(good))
    assert code == 2 and "1 samples" in out and str(bad) in err
    assert _samples(tmp_path / "a.db") == 1


def test_50mb_line_ingests_with_flat_memory(tmp_path: Path) -> None:
    path = tmp_path / "huge.jsonl"
    big = "x" * (50 * 1024 * 1024)
    path.write_text(json.dumps(GOOD) + "\n" + json.dumps({**GOOD, "chosen": big}) + "\n")
    del big
    db = tmp_path / "a.db"
    code = (
        "import resource, sys\n"
        # VmHWM is this program's own peak; ru_maxrss would also count the test process,
        # whose memory the child shared between fork and exec
        "def peak():\n"
        "    try:\n"
        "        for line in open('/proc/self/status'):\n"
        "            if line.startswith('VmHWM:'):\n"
        "                return int(line.split()[1]) // 1024\n"
        "    except OSError:\n"
        "        pass\n"
        "    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024\n"
        "from pathlib import Path\n"
        "from store import Store\n"
        "from auditor.ingest import ingest_file\n"
        f"s = Store({str(db)!r})\n"
        f"r = ingest_file(s, Path({str(path)!r}))\n"
        "print(r.samples, peak())\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    assert out[0] == "2"
    # the line's bytes, its decoded text, SQLite's copies of both and its page cache: about
    # nine times 50 MB (measured 440 MB); a copy per parsing step would pass 800 MB.
    # Streaming of large files is measured on a 1 GB input by bench/bench_ingest.py.
    assert int(out[1]) < 800, f"peak memory {out[1]} MB for a 50 MB line"
    with Store(db) as s:
        sample = s.sample(2)
    assert sample is not None and len(sample["responses"][0]["text"]) == 50 * 1024 * 1024


def test_parallel_parse_matches_serial_and_reports_bad_lines(tmp_path: Path) -> None:
    from auditor.ingest import ingest_file

    recs = [json.dumps({**GOOD, "prompt": f"p{i}"}) for i in range(3000)]
    path = tmp_path / "many.jsonl"
    path.write_text("\n".join(recs) + "\n")
    with Store(tmp_path / "serial.db") as a, Store(tmp_path / "parallel.db") as b:
        ra = ingest_file(a, path, workers=1)
        rb = ingest_file(b, path, workers=2, parallel_min_bytes=0)
        assert (ra.samples, rb.samples) == (3000, 3000)
        for sid in (1, 1500, 3000):
            sa, sb = a.sample(sid), b.sample(sid)
            assert sa is not None and sb is not None
            assert (sa["row"], sa["prompt"], sa["record"]) == (
                sb["row"],
                sb["prompt"],
                sb["record"],
            )
    bad = tmp_path / "bad.jsonl"
    bad.write_text("\n".join([*recs[:2500], '{"prompt": 1', *recs[2500:]]) + "\n")
    with Store(tmp_path / "c.db") as c:
        try:
            ingest_file(c, bad, workers=2, parallel_min_bytes=0)
        except Exception as e:
            assert f"{bad}:2501" in str(e) and "not valid JSON" in str(e)
        else:
            raise AssertionError("a bad line must stop the ingest")
        assert c.count_samples() == 0


def test_a_file_that_is_not_parquet_is_named_not_a_traceback(tmp_path: Path) -> None:
    path = tmp_path / "broken.parquet"
    path.write_bytes(b"PAR1 this is not a parquet file at all")
    code, _, err = _ingest(tmp_path / "a.db", str(path))
    assert code == 2
    assert str(path) in err and "Parquet" in err and "Traceback" not in err


def test_the_summary_names_the_dataset_kept_when_a_name_is_taken(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = _lines(tmp_path / "a" / "train.jsonl", [GOOD])
    second = _lines(tmp_path / "b" / "train.jsonl", [{**GOOD, "prompt": "other"}])
    code, out, _ = _ingest(tmp_path / "x.db", str(first), str(second))
    assert code == 0
    assert "as dataset 'train' " in out and "as dataset 'train-2' " in out
    with Store(tmp_path / "x.db") as s:
        assert [d["name"] for d in s.datasets()] == ["train", "train-2"]


def test_error_messages_quoting_data_carry_no_terminal_escapes(tmp_path: Path) -> None:
    path = _lines(tmp_path / "odd.jsonl", [{"\x1b]0;pwned\x07\x1b[31m[red]key": 1}])
    code, _, err = _ingest(tmp_path / "a.db", str(path))
    assert code == 2 and "could not recognise the format" in err
    assert "[red]key" in err and "\x1b" not in err and "\x07" not in err


def test_progress_bar_shows_a_file_name_literally(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import io

    from auditor.commands.ingest import _progress

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    err = Terminal()
    monkeypatch.setattr(sys, "stderr", err)
    with _progress(tmp_path / "[red]x\x1b]0;pwned\x07.jsonl") as update:
        update(10, 1)
    assert "[red]x" in err.getvalue() and "pwned" not in err.getvalue()


def test_dataset_names_are_one_plain_line(tmp_path: Path) -> None:
    path = _lines(tmp_path / "d.jsonl", [GOOD])
    other = _lines(tmp_path / "e.jsonl", [{**GOOD, "prompt": "q"}])
    assert _ingest(tmp_path / "a.db", str(path), "--name", "  ")[0] == 0
    assert _ingest(tmp_path / "a.db", str(other), "--name", "my\x1b[31m\tset\n")[0] == 0
    with Store(tmp_path / "a.db") as s:
        assert [d["name"] for d in s.datasets()] == ["d", "my set"]
