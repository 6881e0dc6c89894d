"""Streaming ingest: read records from JSONL / JSON / gzip / Parquet / CSV into the store."""

from __future__ import annotations

import contextlib
import csv
import gzip
import hashlib
import io
import json
import os
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import orjson

from auditor.display import one_line
from auditor.formats import (
    FORMATS,
    Format,
    RecordError,
    detect,
    format_list,
    hh_pair,
    mapped_format,
    pair_flags,
    parse_map_spec,
    to_sample,
)
from store.store import (
    EncodedSample,
    encode_pair,
    encode_sample,
    images_mergeable,
    sample_image,
)

if TYPE_CHECKING:
    from store import Store

BATCH = 2000
CHUNK_BYTES = 2 << 20
DETECT_RECORDS = 20


class IngestError(Exception):
    """Bad input: the message names the file, the line or row, the field and what to do."""


@dataclass(slots=True)
class RawRecord:
    """One record as read: its line (or row) number, its verbatim text, its decoded value."""

    row: int
    raw: str | bytes
    """The record verbatim: a JSON line's own bytes, else its text."""
    value: Any = None
    error: str | None = None
    raw_bytes: bytes | None = None
    """The line's bytes when they are not valid UTF-8 (so a reject is written verbatim)."""


@dataclass(slots=True)
class IngestReport:
    """What an ingest did."""

    path: str
    dataset: str | None
    format: str
    records: int = 0
    samples: int = 0
    responses: int = 0
    rejects: int = 0
    flagged: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    skipped_duplicate: bool = False
    rejects_path: str | None = None

    def summary(self) -> str:
        """The one-line summary printed after every ingest."""
        if self.skipped_duplicate:
            return f"{self.path}: already ingested as dataset {self.dataset!r}; nothing added"
        flags = ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in sorted(self.flagged.items()))
        line = (
            f"{self.path}: {self.samples:,} samples, {self.responses:,} responses, "
            f"{self.rejects:,} rejects ({self.format}) as dataset {self.dataset!r} "
            f"in {self.seconds:.1f}s"
        )
        if flags:
            line += f"; flagged: {flags}"
        if self.rejects_path:
            line += f"; rejected lines in {self.rejects_path}"
        return line


def file_hash(path: Path) -> str:
    """SHA-256 of the file's bytes."""
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


class _CountingReader(io.RawIOBase):
    """Counts the compressed bytes read, for the progress bar."""

    def __init__(self, f: IO[bytes]) -> None:
        self.f = f
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        n = self.f.readinto(b)  # type: ignore[attr-defined]
        self.count += n or 0
        return n or 0


def _open(path: Path) -> tuple[IO[bytes], _CountingReader]:
    raw = path.open("rb")
    counter = _CountingReader(raw)
    buffered = io.BufferedReader(counter, buffer_size=1 << 20)
    if raw.read(2) == b"\x1f\x8b":
        raw.seek(0)
        return gzip.GzipFile(fileobj=buffered, mode="rb"), counter  # type: ignore[return-value]
    raw.seek(0)
    return buffered, counter


def _decode(line: bytes, row: int) -> str:
    try:
        return line.decode("utf-8")
    except UnicodeDecodeError as e:
        raise RecordError(
            "(bytes)",
            f"not valid UTF-8 (byte 0x{line[e.start]:02x} at column {e.start + 1}); "
            "re-encode the file as UTF-8",
        ) from None


def _kind_of(path: Path) -> str:
    name = path.name.lower()
    if name.endswith(".gz"):
        name = name[:-3]
    if name.endswith(".parquet"):
        return "parquet"
    if name.endswith(".csv"):
        return "csv"
    return "json"


def read_records(path: Path) -> tuple[Iterator[RawRecord], Callable[[], int]]:
    """The file's records, streamed, and a function giving the bytes read so far."""
    kind = _kind_of(path)
    if kind == "parquet":
        return _parquet_records(path), lambda: 0
    f, counter = _open(path)
    if kind == "csv":
        return _csv_records(f), lambda: counter.count
    head = f.peek(64) if hasattr(f, "peek") else b""
    first = head.lstrip()[:1]
    if first == b"[":
        return _json_array_records(f), lambda: counter.count
    return _jsonl_records(f), lambda: counter.count


def _jsonl_records(f: IO[bytes]) -> Iterator[RawRecord]:
    with f:
        for row, line in enumerate(f, start=1):
            if line.strip():
                yield _load_line(line, row)


def _json_array_records(f: IO[bytes]) -> Iterator[RawRecord]:
    """Elements of a top-level JSON array, decoded one at a time (memory stays flat)."""
    decoder = json.JSONDecoder()
    reader = io.TextIOWrapper(f, encoding="utf-8", errors="strict")
    buf = ""
    pos = 0
    line = 1
    started = False
    eof = False

    def more() -> bool:
        nonlocal buf, pos, eof
        try:
            chunk = reader.read(1 << 20)
        except UnicodeDecodeError as e:
            raise RecordError(
                "(bytes)", f"not valid UTF-8 ({e.reason}); re-encode the file as UTF-8"
            ) from None
        if not chunk:
            eof = True
            return False
        buf = buf[pos:] + chunk
        pos = 0
        return True

    with reader:
        while True:
            # skip whitespace, the opening bracket and commas
            while True:
                while pos < len(buf) and buf[pos] in " \t\r\n,[":
                    if buf[pos] == "\n":
                        line += 1
                    if buf[pos] == "[":
                        if started:
                            break
                        started = True
                    pos += 1
                if pos < len(buf) or eof or not more():
                    break
            if pos >= len(buf):
                return
            if buf[pos] == "]":
                return
            start_line = line
            while True:
                try:
                    value, end = decoder.raw_decode(buf, pos)
                except json.JSONDecodeError as e:
                    if not eof and more():
                        continue
                    yield RawRecord(
                        start_line, buf[pos : pos + 200], error=f"not valid JSON ({e.msg})"
                    )
                    return
                if end == len(buf) and not eof and more():
                    continue  # a number or literal may go on in the next chunk
                break
            raw = buf[pos:end]
            line += raw.count("\n")
            pos = end
            yield RawRecord(start_line, raw, value, error=_not_unicode(value))


def _csv_records(f: IO[bytes]) -> Iterator[RawRecord]:
    text = io.TextIOWrapper(f, encoding="utf-8", errors="strict", newline="")
    with text:
        reader = csv.DictReader(text)
        for i, row in enumerate(reader, start=2):
            value: dict[str, Any] = {}
            for k, v in row.items():
                if isinstance(v, str) and v[:1] in ("[", "{"):
                    try:
                        value[k] = json.loads(v)
                        continue
                    except json.JSONDecodeError:
                        pass
                value[k] = v
            yield RawRecord(i, json.dumps(row, ensure_ascii=False), value)


def _parquet_records(path: Path) -> Iterator[RawRecord]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    row = 0
    try:
        pf = pq.ParquetFile(path)
        for batch in pf.iter_batches(batch_size=1000):
            for value in batch.to_pylist():
                row += 1
                yield RawRecord(row, json.dumps(value, ensure_ascii=False, default=str), value)
    except (pa.ArrowException, OSError) as e:  # not Parquet, or cut short
        raise RecordError("", f"not a readable Parquet file after row {row} ({e})") from None


def _location(path: Path, row: int) -> str:
    return f"{path}:{row}" if _kind_of(path) != "parquet" else f"{path}: row {row}"


def ingest_file(
    store: Store,
    path: Path,
    *,
    format_name: str | None = None,
    map_spec: str | None = None,
    skip_invalid: bool = False,
    name: str | None = None,
    on_progress: Callable[[int, int], None] | None = None,
    workers: int | None = None,
    parallel_min_bytes: int = 16 << 20,
) -> IngestReport:
    """Ingest one file in one transaction; raises `IngestError` on bad input unless skipping."""
    started = time.perf_counter()
    if workers is None:
        workers = min(4, os.cpu_count() or 1)
    if not path.exists():
        raise IngestError(f"{path}: no such file")
    if path.is_dir():
        raise IngestError(f"{path}: is a folder; give the data files themselves")
    if path.stat().st_size == 0:
        raise IngestError(f"{path}: the file is empty; nothing to ingest")
    digest = file_hash(path)
    known = store.dataset_by_hash(digest)
    if known:
        return IngestReport(str(path), known["name"], known["format"], skipped_duplicate=True)

    fmt: Format | None = None
    if map_spec:
        try:
            fmt = mapped_format(parse_map_spec(map_spec))
        except ValueError as e:
            raise IngestError(f"{path}: {e}") from None
    elif format_name:
        if format_name not in FORMATS:
            raise IngestError(
                f"{path}: unknown format {format_name!r}; known formats:\n{format_list()}"
            )
        fmt = FORMATS[format_name]

    records, bytes_read = read_records(path)
    head: list[RawRecord] = []
    try:
        for rec in records:
            head.append(rec)
            if len(head) >= DETECT_RECORDS:
                break
    except (EOFError, zlib.error, gzip.BadGzipFile) as e:
        raise IngestError(f"{path}: the gzip stream is broken or truncated ({e})") from None
    except RecordError as e:
        raise IngestError(f"{path}: {e.message}") from None
    if not head:
        raise IngestError(f"{path}: no records in the file; nothing to ingest")
    if fmt is None:
        fmt = detect([r.value for r in head if r.error is None])
        if fmt is None:
            first = next((r for r in head if r.error is None), head[0])
            keys = sorted(first.value)[:12] if isinstance(first.value, dict) else []
            raise IngestError(
                f"{path}: could not recognise the format from the first {len(head)} records "
                f"(fields: {', '.join(keys) or 'none'}). Known formats:\n{format_list()}\n"
                "Name one with --format, or map fields yourself, e.g. "
                "--map prompt=question,chosen=answers.0.text,rejected=answers.1.text"
            )

    report = IngestReport(str(path), None, fmt.name)
    rejects = _RejectsFile(path)
    # a name is typed back as --dataset NAME: one plain line, no control characters
    dataset_name = one_line(name, 200) or one_line(_default_name(path), 200) or "dataset"
    parallel = (
        workers > 1
        and _kind_of(path) == "json"
        and isinstance(head[0].value, dict | None)
        and head[0].raw_bytes is None
        and not _is_array(path)
        and path.stat().st_size >= parallel_min_bytes
    )
    if parallel:  # the workers read the file from its start: the records read to detect
        head.clear()  # the format can go (a huge one would be held through the ingest)
        records = iter(())

    def all_records() -> Iterator[RawRecord]:
        yield from head
        yield from records

    def serial_chunks() -> Iterator[_ChunkOut]:
        chunk: list[RawRecord] = []
        for rec in all_records():
            chunk.append(rec)
            if len(chunk) >= BATCH:
                yield _parse_records(fmt, chunk, skip_invalid)
                chunk = []
        yield _parse_records(fmt, chunk, skip_invalid)

    big = path.stat().st_size >= parallel_min_bytes
    with rejects, store.bulk() if big else contextlib.nullcontext(), store.transaction():
        dataset_id = store.add_dataset(
            name=dataset_name,
            source_path=str(path.resolve()),
            format=fmt.name,
            content_hash=digest,
            options={"map": map_spec} if map_spec else None,
        )
        # the store makes a taken name unique (train, train-2): report the name it kept
        kept = store.dataset_by_hash(digest)
        dataset_name = kept["name"] if kept else dataset_name
        try:
            outcomes = (
                _parallel_chunks(
                    path, fmt.name, map_spec, skip_invalid, workers, images_mergeable()
                )
                if parallel
                else serial_chunks()
            )
            with store.bulk_writer(dataset_id) as writer:
                for out in outcomes:
                    report.records += out.count
                    for raw in out.rejects:
                        rejects.write(raw)
                    report.rejects += len(out.rejects)
                    for flag, n in out.flags.items():
                        report.flagged[flag] = report.flagged.get(flag, 0) + n
                    if out.image is not None:
                        writer.put_image(out.image)
                    else:
                        writer.put(out.encoded, out.records)
                    report.responses += out.responses
                    report.samples += out.samples
                    if out.error is not None:
                        writer.close()
                        row, message = out.error
                        hint = " (or pass --skip-invalid to set such lines aside)"
                        raise IngestError(f"{_location(path, row)}: {message}{hint}")
                    if on_progress:
                        on_progress(bytes_read() if not parallel else 0, report.records)
        except (EOFError, zlib.error, gzip.BadGzipFile) as e:
            raise IngestError(
                f"{path}: the gzip stream is broken or truncated after record {report.records} "
                f"({e}); nothing from this file was kept"
            ) from None
        except RecordError as e:  # raised by a reader (undecodable JSON array)
            raise IngestError(f"{path}: {e.message}") from None
        if report.samples == 0:
            raise IngestError(f"{path}: no valid records ({report.rejects} rejected); nothing kept")
        store.finish_dataset(
            dataset_id,
            records=report.records,
            samples=report.samples,
            responses=report.responses,
            rejects=report.rejects,
        )
    report.dataset = dataset_name
    report.rejects_path = rejects.close()
    report.seconds = time.perf_counter() - started
    return report


@dataclass(slots=True)
class _ChunkOut:
    """What parsing one chunk of records gave."""

    encoded: list[EncodedSample] = field(default_factory=list)
    records: list[str | bytes] = field(default_factory=list)
    """The source record of each encoded sample, verbatim."""
    image: bytes | None = None
    """From a worker process: the samples as a `sample_image` instead of `encoded`."""
    samples: int = 0
    responses: int = 0
    rejects: list[bytes] = field(default_factory=list)
    flags: dict[str, int] = field(default_factory=dict)
    count: int = 0
    """Records read, good and bad."""
    error: tuple[int, str] | None = None
    """The first bad record's row and message, when not skipping (parsing stops there)."""


def _parse_into(out: _ChunkOut, fmt: Format, rec: RawRecord, skip_invalid: bool) -> bool:
    """Parse one record into ``out``; whether it gave a sample (else it was rejected, or
    it is ``out.error``)."""
    try:
        if rec.error is not None:
            raise RecordError("(line)", rec.error)
        sample = to_sample(fmt, rec.value, rec.row, rec.raw)
    except RecordError as e:
        if not skip_invalid:
            out.error = (rec.row, e.message)
            return False
        raw = rec.raw_bytes if rec.raw_bytes is not None else rec.raw
        out.rejects.append(raw if isinstance(raw, bytes) else raw.encode("utf-8"))
        return False
    flags = out.flags
    for flag in sample.flags:
        flags[flag] = flags.get(flag, 0) + 1
    out.encoded.append(encode_sample(sample))
    out.samples += 1
    out.responses += len(sample.responses)
    return True


def _parse_records(fmt: Format, chunk: list[RawRecord], skip_invalid: bool) -> _ChunkOut:
    out = _ChunkOut()
    for rec in chunk:
        out.count += 1
        if _parse_into(out, fmt, rec, skip_invalid):
            out.records.append(rec.raw)
        elif out.error is not None:
            return out
    return out


def _load_line(line: bytes, row: int) -> RawRecord:
    """Decode one JSON line: orjson when it can, the standard library's messages when not.

    The record keeps the line's own bytes, so it is stored exactly as it was in the file.
    """
    stripped = line.rstrip(b"\r\n")
    try:
        return RawRecord(row, stripped, orjson.loads(stripped))
    except orjson.JSONDecodeError:
        try:
            text = stripped.decode("utf-8")
        except UnicodeDecodeError:
            try:
                _decode(stripped, row)
            except RecordError as e:
                return RawRecord(row, stripped, error=e.message, raw_bytes=stripped)
            raise
        try:
            value = json.loads(text)  # NaN, huge integers, lone surrogates
        except json.JSONDecodeError as e:
            return RawRecord(row, stripped, error=f"not valid JSON ({e.msg} at column {e.colno})")
        return RawRecord(row, stripped, value, error=_not_unicode(value))


def _not_unicode(value: Any) -> str | None:
    """Why a decoded record cannot be stored as text, if it cannot (a lone surrogate)."""
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError as e:
        return (
            f"an escape for half a UTF-16 surrogate pair (U+{ord(e.object[e.start]):04X}) "
            "is not text; fix the escape or drop the record"
        )
    return None


_FORMAT_CACHE: dict[tuple[str, str | None], Format] = {}
_UNPARSED = object()


def _parse_lines(
    fmt_name: str,
    map_spec: str | None,
    first_row: int,
    block: bytes,
    skip_invalid: bool,
    image: bool = False,
) -> _ChunkOut:
    """Decode and parse a block of whole JSON lines (in a worker process, into an ``image``).

    Runs once per line of the file, so the common HH record takes a short path: two
    strings, split by `hh_pair`, encoded by `encode_pair`; anything else goes through the
    format's parser, with the same outcome (a test compares the two on the shared data).
    """
    key = (fmt_name, map_spec)
    fmt = _FORMAT_CACHE.get(key)
    if fmt is None:
        fmt = mapped_format(parse_map_spec(map_spec)) if map_spec else FORMATS[fmt_name]
        _FORMAT_CACHE[key] = fmt
    lines = block.split(b"\n")
    del block  # the caller's copy may be the only other one: keep a huge line once
    out = _ChunkOut()
    kept = out.records
    encoded = out.encoded
    flags = out.flags
    hh = fmt.name == "hh-rlhf" and not map_spec
    loads = orjson.loads
    for k, line in enumerate(lines):
        if not line or line.isspace():
            continue
        lines[k] = b""
        if line[-1] == 13:  # a CRLF line
            line = line.rstrip(b"\r")
        out.count += 1
        row = first_row + k
        try:
            value = loads(line)
        except orjson.JSONDecodeError:
            value = _UNPARSED
        if hh and value.__class__ is dict and len(value) == 2:
            chosen, rejected = value.get("chosen"), value.get("rejected")
            if chosen.__class__ is str and rejected.__class__ is str:
                fast = hh_pair(chosen, rejected)
                if fast is not None:
                    flag = pair_flags(fast[1], fast[2])
                    if flag is not None:
                        for name in flag.split(","):
                            flags[name] = flags.get(name, 0) + 1
                    encoded.append(encode_pair(row, *fast, flag))
                    kept.append(line)
                    out.samples += 1
                    out.responses += 2
                    continue
        rec = _load_line(line, row) if value is _UNPARSED else RawRecord(row, line, value)
        if _parse_into(out, fmt, rec, skip_invalid):
            kept.append(line)
        elif out.error is not None:
            break
    if image and encoded:
        # the rows go back as one SQLite image: no per-row unpickling or binding in the
        # writer, which is the one part of an ingest that cannot run in parallel
        out.image = sample_image(encoded, kept)
        out.encoded, out.records = [], []
    return out


def _parallel_chunks(
    path: Path,
    fmt_name: str,
    map_spec: str | None,
    skip_invalid: bool,
    workers: int,
    image: bool = True,
) -> Iterator[_ChunkOut]:
    """Parse JSON lines in worker processes; outcomes come back in file order.

    The file is read in blocks of whole lines, so this process does no per-line work.
    """
    import multiprocessing
    from collections import deque
    from concurrent.futures import Future, ProcessPoolExecutor

    f, _ = _open(path)
    pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork"))
    pending: deque[Future[_ChunkOut]] = deque()

    row = 1
    try:
        with f:
            while block := f.read(CHUNK_BYTES):
                if not block.endswith(b"\n"):
                    block += f.readline()
                lines = block.count(b"\n") + (0 if block.endswith(b"\n") else 1)
                if len(block) > 2 * CHUNK_BYTES:
                    # a huge record is parsed here: shipping it to a worker would copy it
                    while pending:
                        out = pending.popleft().result()
                        yield out
                        if out.error:
                            return
                    holder, block = [block], b""  # the parser then holds the only copy
                    out = _parse_lines(fmt_name, map_spec, row, holder.pop(), skip_invalid)
                else:
                    pending.append(
                        pool.submit(
                            _parse_lines, fmt_name, map_spec, row, block, skip_invalid, image
                        )
                    )
                    if len(pending) <= workers:
                        row += lines
                        continue
                    out = pending.popleft().result()
                row += lines
                yield out
                if out.error:
                    return
        while pending:
            out = pending.popleft().result()
            yield out
            if out.error:
                return
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _is_array(path: Path) -> bool:
    f, _ = _open(path)
    with f:
        head = f.read(4096)
    return head.lstrip()[:1] == b"["


def _default_name(path: Path) -> str:
    name = path.name
    for suffix in (".gz", ".jsonl", ".json", ".parquet", ".csv"):
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
    return name or "dataset"


class _RejectsFile:
    """Bad records, written verbatim one a line to ``FILE.rejects.jsonl`` as they come."""

    def __init__(self, source: Path) -> None:
        self.source = source
        self.path: Path | None = None
        self.f: IO[bytes] | None = None
        self.count = 0

    def __enter__(self) -> _RejectsFile:
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        if self.f is not None:
            self.f.close()
            self.f = None
        if exc_type is not None and self.path is not None:
            self.path.unlink(missing_ok=True)  # nothing was kept, so no rejects either
            self.count = 0

    def write(self, data: bytes) -> None:
        """Append one bad record, verbatim."""
        if self.f is None:
            self.path = Path(str(self.source) + ".rejects.jsonl")
            try:
                self.f = self.path.open("wb")
            except OSError:  # the data's folder is read-only: write in the working folder
                self.path = Path.cwd() / (self.source.name + ".rejects.jsonl")
                self.f = self.path.open("wb")
        # a JSON-array element may span lines; its newlines are whitespace between tokens
        self.f.write(data.replace(b"\n", b" ") + b"\n")
        self.count += 1

    def close(self) -> str | None:
        """Close the file; its path when anything was written."""
        if self.f is not None:
            self.f.close()
            self.f = None
        return str(self.path) if self.count and self.path else None
