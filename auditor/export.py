"""Export a cleaned dataset: select samples by region, apply reviewers' decisions, write a
trainer's format atomically, with a manifest that says how to rebuild it.

Labels (the choices this tool makes where the paper is silent):

- A pairwise sample keeps its label; a reviewer's flip trades the two responses between
  the chosen and rejected places. Each text keeps its model; the ratings stay with the
  place, so a corrected record reads consistently (chosen rated higher). An unlabelled
  pair (a tie) is left out of the pair formats unless a reviewer named the best one.
- A multi-response sample is ranked by ``rank_by``: the annotated ratings (default, as
  the paper builds its training pairs) or the selected scorer's scores. A reviewer's
  ``best_idx`` overrides the best response. Responses without a score take no part;
  equal scores make no pair.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gzip
import hashlib
import io
import json
import math
import os
import queue
import random
import re
import secrets
import shlex
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from json.encoder import encode_basestring
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from auditor.model import Action, Region

if TYPE_CHECKING:
    from store import Store
    from store.store import DecisionState, ExportSample, ScorerRow

FORMATS: dict[str, str] = {
    "trl": "TRL standard: {prompt, chosen, rejected} strings, one pair per sample "
    "(multi-response: best vs worst)",
    "trl-chat": "TRL conversational: prompt, chosen, rejected as [{role, content}] lists",
    "original": "the input records exactly as they came, only the decisions applied",
    "pairs-all": "every pair of responses whose scores differ, the higher one chosen "
    "(the paper's training pairs)",
    "binarized": "best response vs a random lower-scored other (seeded)",
}
"""Output formats, with a line for --help and error messages."""


RANK_BY = ("annotations", "scorer")
CHUNK = 2000
PARALLEL_MIN = 200_000
"""Selections of this many samples are exported to JSON Lines by two processes."""
STRIPE = 4 * CHUNK
"""Samples in a stripe: the unit of work the two processes share."""
_INBOX_BYTES = 64 << 20
"""Lines the first process holds from the second before the second must wait."""

Response = tuple[Any, ...]
"""(sample_id, idx, role, text, rating, score) as `Store.export_samples` yields them."""

IDX, ROLE, TEXT, RATING, SCORE = 1, 2, 3, 4, 5

Pair = tuple[Any, Any, "float | None", "float | None"]
"""One training pair: chosen and rejected text (str, or quoted UTF-8 bytes for JSON output)
and the scores reported beside them."""


class ExportError(Exception):
    """Bad export input or a file that cannot be written; the message says what to do."""


@dataclass(slots=True)
class ExportOptions:
    """What to export and how; the fields mirror `auditor export`'s flags."""

    format: str = "trl"
    regions: tuple[str, ...] = ()
    paper_subset: bool = False
    """The HighAvg region: the paper's selected third."""
    random_third: bool = False
    """A seeded random third of the mapped samples: the paper's baseline."""
    seed: int = 42
    """Seeds --random-third and the binarized format's pick of the other response."""
    apply_decisions: bool = True
    reviewed_only: bool = False
    dataset: str | None = None
    scorer: str | None = None
    """Scorer name or config hash whose map selects regions (default: the newest)."""
    rank_by: str = "annotations"
    """What orders a multi-response sample's responses: ``annotations`` or ``scorer``."""
    command_line: str | None = None
    """Recorded in the manifest; when None, the equivalent `auditor export` command is."""

    def as_cli(self, out: str | os.PathLike[str], db: str | os.PathLike[str] | None = None) -> str:
        """The `auditor export` command line that repeats this export."""
        args = ["auditor", "export", str(out), "--format", self.format]
        if db is not None:
            args += ["--db", str(db)]
        for r in self.regions:
            args += ["--region", str(r)]
        if self.paper_subset:
            args.append("--paper-subset")
        if self.random_third:
            args += ["--random-third", "--seed", str(self.seed)]
        elif self.format == "binarized":
            args += ["--seed", str(self.seed)]
        if not self.apply_decisions:
            args.append("--ignore-decisions")
        if self.reviewed_only:
            args.append("--reviewed-only")
        if self.dataset:
            args += ["--dataset", self.dataset]
        if self.scorer:
            args += ["--scorer", self.scorer]
        if self.rank_by != "annotations":
            args += ["--rank-by", self.rank_by]
        return shlex.join(args)


@dataclass(slots=True)
class ExportReport:
    """What an export wrote."""

    out_path: str
    manifest_path: str
    format: str
    samples_in: int = 0
    selected: int = 0
    samples_out: int = 0
    records_out: int = 0
    seconds: float = 0.0
    counts: dict[str, int] = field(default_factory=dict)
    decisions: dict[str, int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """The one-line summary printed after every export."""
        line = (
            f"{self.out_path}: {self.records_out:,} records ({self.format}) from "
            f"{self.samples_out:,} of {self.selected:,} selected samples "
            f"({self.samples_in:,} in scope) in {self.seconds:.1f}s"
        )
        applied = ", ".join(f"{n:,} {k}" for k, n in sorted(self.decisions.items()) if n)
        if applied:
            line += f"; decisions applied: {applied}"
        return line + f"; manifest {self.manifest_path}"


# -- labels --------------------------------------------------------------------------------


def _labelled(responses: list[Response]) -> tuple[Response, Response] | None:
    if len(responses) == 2:
        a, b = responses
        if a[ROLE] == "chosen" and b[ROLE] == "rejected":
            return a, b
        if a[ROLE] == "rejected" and b[ROLE] == "chosen":
            return b, a
    chosen = [r for r in responses if r[ROLE] == "chosen"]
    rejected = [r for r in responses if r[ROLE] == "rejected"]
    if len(chosen) == 1 and len(rejected) == 1:
        return chosen[0], rejected[0]
    return None


def is_flipped(responses: list[Response], decision: DecisionState | None) -> bool:
    """Whether a reviewer reversed a labelled pair (a flip, or the rejected one named best)."""
    if decision is None:
        return False
    if decision.action == Action.FLIP.value:
        return True
    pair = _labelled(responses)
    return pair is not None and decision.best_idx is not None and decision.best_idx == pair[1][IDX]


class _Labeller:
    """Turns a sample (and its decision) into training pairs, counting why some give none."""

    def __init__(self, rank_by: str, seed: int) -> None:
        self.value = SCORE if rank_by == "scorer" else RATING
        self.seed = seed
        self.why_none: Counter[str] = Counter()

    def _pair_label(self, s: ExportSample, d: DecisionState | None) -> list[Pair]:
        pair = _labelled(s.responses)
        if pair is None:
            best = d.best_idx if d is not None else None
            if len(s.responses) == 2 and best in (0, 1):  # a reviewer settled a tie
                c, r = s.responses[best], s.responses[1 - best]
                return [(c[TEXT], r[TEXT], c[RATING], r[RATING])]
            self.why_none["tie"] += 1
            return []
        c, r = pair
        if d is not None and is_flipped(s.responses, d):
            # the texts trade places; the ratings stay with the place (see the module doc)
            return [(r[TEXT], c[TEXT], c[RATING], r[RATING])]
        return [(c[TEXT], r[TEXT], c[RATING], r[RATING])]

    def _ranked(
        self, s: ExportSample, d: DecisionState | None
    ) -> tuple[Response, list[Response], bool] | None:
        """The best response, the other scored ones, and whether a reviewer named the best."""
        v = self.value
        scored = [r for r in s.responses if r[v] is not None]
        best_idx = d.best_idx if d is not None else None
        named = next((r for r in s.responses if r[IDX] == best_idx), None)
        if named is not None:
            others = [r for r in scored if r[IDX] != best_idx]
            if not others:
                self.why_none["unscored"] += 1
                return None
            return named, others, True
        if len(scored) < 2:
            self.why_none["unscored"] += 1
            return None
        # the first of equal best scores, so a rerun picks the same one
        best = max(scored, key=lambda r: (r[v], -r[IDX]))
        return best, [r for r in scored if r is not best], False

    def one(self, s: ExportSample, d: DecisionState | None) -> list[Pair]:
        """Best vs worst (a pair sample: its own pair)."""
        if s.kind == "pair" and len(s.responses) == 2:
            return self._pair_label(s, d)
        ranked = self._ranked(s, d)
        if ranked is None:
            return []
        best, others, named = ranked
        v = self.value
        worst = min(others, key=lambda r: (r[v], r[IDX]))
        if not named and worst[v] == best[v]:
            self.why_none["all_equal"] += 1
            return []
        return [self._multi_pair(best, worst)]

    def binarized(self, s: ExportSample, d: DecisionState | None) -> list[Pair]:
        """Best vs a random other with a lower score (seeded per sample)."""
        if s.kind == "pair" and len(s.responses) == 2:
            return self._pair_label(s, d)
        ranked = self._ranked(s, d)
        if ranked is None:
            return []
        best, others, named = ranked
        v = self.value
        lower = others if named else [r for r in others if r[v] < best[v]]
        if not lower:
            self.why_none["all_equal"] += 1
            return []
        # seeded by (seed, sample) so a sample's pick does not depend on what else is selected
        rng = random.Random(f"{self.seed}:{s.id}")
        return [self._multi_pair(best, rng.choice(lower))]

    def every(self, s: ExportSample, d: DecisionState | None) -> list[Pair]:
        """Every pair whose scores differ, the higher chosen; a named best beats every other."""
        if s.kind == "pair" and len(s.responses) == 2:
            return self._pair_label(s, d)
        ranked = self._ranked(s, d)
        if ranked is None:
            return []
        best, others, named = ranked
        v = self.value
        pool = others if named else sorted([best, *others], key=lambda r: r[IDX])
        pairs = [self._multi_pair(best, o) for o in others] if named else []
        for i, a in enumerate(pool):
            for b in pool[i + 1 :]:
                if a[v] == b[v]:
                    continue
                pairs.append(self._multi_pair(a, b) if a[v] > b[v] else self._multi_pair(b, a))
        if not pairs:
            self.why_none["all_equal"] += 1
        return pairs

    def _multi_pair(self, c: Response, r: Response) -> Pair:
        return (c[TEXT], r[TEXT], c[self.value], r[self.value])


# -- prompts ---------------------------------------------------------------------------------

_HH_NAMES = {"user": "Human", "assistant": "Assistant"}


def prompt_string(conversation: list[dict[str, str]]) -> str:
    """One prompt string: a lone user turn as is, else an HH transcript ending in Assistant:."""
    if len(conversation) == 1 and conversation[0]["role"] == "user":
        return conversation[0]["content"]
    parts = [
        f"\n\n{_HH_NAMES.get(t['role'], t['role'].capitalize())}: {t['content']}"
        for t in conversation
    ]
    return "".join(parts) + "\n\nAssistant:"


# -- the original records, with decisions applied ------------------------------------------

_KEY_SEP = re.compile(r'^\s*\{\s*"(?:[^"\\]|\\.)*"(\s*:\s*)')


def dumps_like(value: Any, raw: str) -> str:
    """JSON text for ``value`` in the style of ``raw`` (separators, ASCII escapes), on one line."""
    m = _KEY_SEP.match(raw)
    compact = m is not None and m.group(1) == ":"
    ascii_only = raw.isascii() and "\\u" in raw
    return json.dumps(
        value, ensure_ascii=ascii_only, separators=(",", ":") if compact else (", ", ": ")
    )


def _swap(obj: Any, a: str, b: str) -> None:
    if isinstance(obj, dict) and a in obj and b in obj:
        obj[a], obj[b] = obj[b], obj[a]


def _swap_votes(record: dict[str, Any]) -> None:
    keys = [k for k in record if re.fullmatch(r"annotator\d+", k)] or (
        ["label"] if "label" in record else []
    )
    for k in keys:
        v = record[k]
        if isinstance(v, str):
            record[k] = {"1": "2", "2": "1"}.get(v.strip(), v)
        elif isinstance(v, int | float) and not isinstance(v, bool) and v in (1, 2):
            record[k] = type(v)(3 - v)


def _swap_labels(record: dict[str, Any]) -> None:
    outputs = record.get("evaluation_sample", {}).get("outputs", [])
    labels = [o.get("content_label") if isinstance(o, dict) else None for o in outputs]
    if labels.count("chosen") != 1 or labels.count("rejected") != 1:
        return
    c, r = outputs[labels.index("chosen")], outputs[labels.index("rejected")]
    # the texts stay in their places; the label and its reward move, as a flip means
    for key in ("content_label", "rewards"):
        if key in c or key in r:
            c[key], r[key] = r.get(key), c.get(key)


def _set_path(record: Any, path: list[str | int], value: Any) -> None:
    for key in path[:-1]:
        record = record[key]
    record[path[-1]] = value


def _get_path(record: Any, path: list[str | int]) -> Any:
    for key in path:
        record = record[key]
    return record


def flip_record(fmt: str, record: dict[str, Any], map_spec: str | None = None) -> bool:
    """Reverse the label of one source record in place; False when the format has none."""
    if fmt in ("trl", "trl-chat", "hh-rlhf", "sharegpt"):
        _swap(record, "chosen", "rejected")
        _swap(record, "chosen_model", "rejected_model")
        _swap(record.get("metadata"), "chosen_model", "rejected_model")
        return True
    if fmt == "pandalm":
        _swap_votes(record)
        return True
    if fmt == "hh-messages":
        _swap_labels(record)
        return True
    if fmt == "map" and map_spec:
        from auditor.formats import parse_map_spec

        mapping = parse_map_spec(map_spec)
        for a, b in (("chosen", "rejected"), ("chosen_model", "rejected_model")):
            if a in mapping and b in mapping:
                try:
                    va, vb = _get_path(record, mapping[a]), _get_path(record, mapping[b])
                    _set_path(record, mapping[a], vb)
                    _set_path(record, mapping[b], va)
                except (KeyError, IndexError, TypeError):
                    return False
        return "chosen" in mapping
    return False


# -- writing ---------------------------------------------------------------------------------


def _container(out: Path) -> tuple[str, bool]:
    name = out.name.lower()
    gz = name.endswith(".gz")
    if gz:
        name = name[:-3]
    if name.endswith(".parquet"):
        if gz:
            raise ExportError(
                f"{out}: Parquet compresses itself; drop the .gz (write {out.name[:-3]})"
            )
        return "parquet", False
    if name.endswith(".json"):
        return "json", gz
    return "jsonl", gz


def _parquet_schema(fmt: str) -> Any:
    import pyarrow as pa

    if fmt == "original":
        return None
    text = pa.string()
    if fmt == "trl-chat":
        text = pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))
    return pa.schema(
        [
            ("prompt", text),
            ("chosen", text),
            ("rejected", text),
            ("score_chosen", pa.float64()),
            ("score_rejected", pa.float64()),
        ]
    )


class _HashingFile(io.RawIOBase):
    """A write-only file that hashes what passes through it."""

    def __init__(self, f: IO[bytes]) -> None:
        self.f = f
        self.hash = hashlib.sha256()

    def writable(self) -> bool:
        return True

    def write(self, b: Any) -> int:
        self.hash.update(b)
        return self.f.write(b)


class _Lines(list[bytes]):
    """Rows that are all finished JSON lines (UTF-8 bytes)."""


def _ids_text(ids: list[int]) -> bytes:
    """Sample ids as the manifest's ``sample_ids_sha256`` hashes them: "1,2,3," """
    return (",".join(map(str, ids)) + ",").encode()


def _encoded(rows: list[Any]) -> list[bytes]:
    if isinstance(rows, _Lines):
        return rows
    dumps = json.dumps
    return [
        r
        if isinstance(r, bytes)
        else (r if isinstance(r, str) else dumps(r, ensure_ascii=False)).encode("utf-8")
        for r in rows
    ]


def _jsonl(rows: list[Any]) -> bytes:
    """Rows as JSON lines, UTF-8."""
    return b"\n".join(_encoded(rows)) + b"\n" if rows else b""


class _Writer:
    """Writes rows to a temporary file beside ``out``; `commit` renames it into place.

    JSON text is encoded, hashed, compressed and written on a background thread, which
    overlaps with building the next rows: zlib, hashlib and file writes release the GIL.
    """

    def __init__(
        self,
        out: Path,
        container: str,
        gz: bool,
        fmt: str,
    ) -> None:
        self.out, self.container, self.gz = out, container, gz
        self.tmp, fd = _temp_beside(out)
        self.raw: IO[bytes] = os.fdopen(fd, "wb", buffering=1 << 20)
        self.sink = _HashingFile(self.raw)
        self.stream: Any = self.sink
        if gz:
            # mtime 0 and the output's own name: the same export gives the same bytes;
            # level 1 because level 6 would take several times longer than the export itself
            self.stream = gzip.GzipFile(
                filename=out.name[:-3], fileobj=self.sink, mode="wb", compresslevel=1, mtime=0
            )
        self.first = True
        self.parquet: Any = None
        self.tables: list[Any] = []
        self.schema = _parquet_schema(fmt) if container == "parquet" else None
        self.queue: queue.Queue[bytes | None] = queue.Queue(maxsize=4)
        self.error: BaseException | None = None
        self.cancelled = False
        self.thread: threading.Thread | None = None
        if container != "parquet":
            self.thread = threading.Thread(target=self._drain, name="export-writer", daemon=True)
            self.thread.start()
            if container == "json":
                self.queue.put(b"[\n")

    def _drain(self) -> None:
        while (data := self.queue.get()) is not None:
            if self.error is None and not self.cancelled:
                try:
                    self.stream.write(data)
                except BaseException as e:  # handed to the exporting thread
                    self.error = e

    def write(self, rows: list[Any]) -> None:
        """Write rows: dicts, or JSON text (str or UTF-8 bytes) kept verbatim."""
        if self.error is not None:
            raise self.error
        if not rows:
            return
        if self.container == "parquet":
            self._write_parquet(rows)
            return
        if self.container == "json":
            data = (b"" if self.first else b",\n") + b",\n".join(_encoded(rows))
        else:
            data = _jsonl(rows)
        self.first = False
        self.queue.put(data)

    def write_bytes(self, data: bytes) -> None:
        """Write JSON lines built elsewhere (`_jsonl`), as they are."""
        if self.error is not None:
            raise self.error
        self.first = False
        self.queue.put(data)

    def _write_parquet(self, rows: list[Any]) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        values = [json.loads(r) if isinstance(r, str | bytes) else r for r in rows]
        try:
            if self.schema is None:
                # free-form records: types settle only once every row is seen
                self.tables.append(pa.Table.from_pylist(values))
                return
            table = pa.Table.from_pylist(values, schema=self.schema)
            if self.parquet is None:
                self.parquet = pq.ParquetWriter(self.raw, self.schema)
            self.parquet.write_table(table)
        except (pa.ArrowException, ValueError, TypeError) as e:
            raise ExportError(
                f"{self.out}: these records do not fit Parquet ({e}); export to .jsonl instead"
            ) from None

    def _stop_thread(self) -> None:
        if self.thread is not None:
            self.queue.put(None)
            self.thread.join()
            self.thread = None

    def finish(self) -> str:
        """Complete the temporary file and return its SHA-256; `publish` moves it into place."""
        try:
            if self.container == "parquet":
                self._finish_parquet()
            elif self.container == "json":
                self.queue.put(b"]\n" if self.first else b"\n]\n")
            self._stop_thread()
            if self.error is not None:
                raise self.error
            if self.stream is not self.sink:
                self.stream.close()
            self.raw.flush()
            os.fsync(self.raw.fileno())
            self.raw.close()
            if self.container == "parquet":  # pyarrow wrote to the file itself
                with self.tmp.open("rb") as f:
                    return hashlib.file_digest(f, "sha256").hexdigest()
            return self.sink.hash.hexdigest()
        except BaseException:
            self.abort()
            raise

    def publish(self) -> None:
        """Rename the finished file over ``out`` (atomic on one filesystem)."""
        os.replace(self.tmp, self.out)

    def _finish_parquet(self) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            if self.schema is None:
                table = (
                    pa.concat_tables(self.tables, promote_options="permissive")
                    if self.tables
                    else pa.table({})
                )
                pq.write_table(table, self.raw)
            elif self.parquet is None:
                pq.write_table(self.schema.empty_table(), self.raw)
            else:
                self.parquet.close()
        except (pa.ArrowException, ValueError, TypeError) as e:
            raise ExportError(
                f"{self.out}: these records do not fit Parquet ({e}); export to .jsonl instead"
            ) from None

    def abort(self) -> None:
        """Drop the temporary file; any earlier file at ``out`` stays as it was."""
        self.cancelled = True
        with contextlib.suppress(BaseException):
            self._stop_thread()
        with contextlib.suppress(Exception):
            if self.parquet is not None:
                self.parquet.close()
        with contextlib.suppress(Exception):
            if self.stream is not self.sink:
                self.stream.close()
        with contextlib.suppress(Exception):
            self.raw.close()
        self.tmp.unlink(missing_ok=True)


def _temp_beside(path: Path) -> tuple[Path, int]:
    """A new hidden file next to ``path`` (same filesystem, so a rename is atomic)."""
    while True:
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
        with contextlib.suppress(FileExistsError):
            # mode 0o666 less the umask, as the file would get if written directly
            return tmp, os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)


def _write_temp(path: Path, text: str) -> Path:
    """Write ``text`` to a new temporary file beside ``path``; returns its path."""
    tmp, fd = _temp_beside(path)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp


# -- checks ------------------------------------------------------------------------------------


def _canonical_regions(names: Iterable[str]) -> list[str]:
    known = {r.value.lower(): r.value for r in Region}
    out = []
    for name in names:
        value = known.get(str(name).strip().lower())
        if value is None:
            raise ExportError(
                f"unknown region {name!r}; the map's regions are "
                + ", ".join(r.value for r in Region)
            )
        if value not in out:
            out.append(value)
    return out


def _same_file(a: Path, b: Path) -> bool:
    try:
        if a.exists() and b.exists():
            return a.samefile(b)
    except OSError:
        pass
    return a.resolve() == b.resolve()


def _check_out(store: Store, out: Path, manifest: Path) -> None:
    if out.is_dir():
        raise ExportError(f"{out}: is a folder; give a file name such as {out / 'clean.jsonl'}")
    if not out.parent.is_dir():
        raise ExportError(f"{out}: the folder {out.parent} does not exist; create it first")
    if manifest.is_dir():
        raise ExportError(f"{manifest}: is a folder; the manifest cannot be written there")
    for target in (out, manifest):
        what = input_named(store, target)
        if what is not None:
            raise ExportError(
                f"{target}: is {what}; an export never overwrites its input. "
                "Choose another file name"
            )


def input_named(store: Store, target: Path) -> str | None:
    """What ``target`` is if writing it would destroy an input (source file, the DB), else None."""
    db = Path(store.path)
    inputs = [
        (Path(d["source_path"]), f"the input file of dataset {d['name']!r}")
        for d in store.datasets()
    ]
    inputs += [(db, "the database"), (Path(f"{db}-wal"), "the database's journal")]
    inputs += [(Path(f"{db}-shm"), "the database's shared memory")]
    return next((what for path, what in inputs if _same_file(target, path)), None)


# -- the export --------------------------------------------------------------------------------


def _tool_version() -> str:
    try:
        from importlib.metadata import version

        return version("alignment-auditor")
    except Exception:  # not installed: running from a checkout
        from auditor import __version__

        return __version__


@dataclass(slots=True)
class _Plan:
    """A checked export: where to write, what to read, the scorer and its map."""

    out: Path
    manifest_path: Path
    container: str
    gz: bool
    regions: list[str]
    dataset_id: int | None
    scorer: ScorerRow | None
    map_scorer: int | None
    """The scorer whose map selects regions (None: no region selection)."""
    score_of: int | None
    """The scorer whose scores rank multi-response samples (None: the annotations)."""
    thresholds: dict[str, Any] | None
    region_counts: dict[str, int]
    decisions: dict[int, DecisionState]
    decided: set[int]
    """Samples with a flip, drop, keep or named best response."""
    only: set[int] | None
    """Sample ids to keep (random third, reviewed only); None keeps all."""
    samples_in: int
    total: int
    formats: dict[int, tuple[str, str | None]]
    """Dataset id -> (input format, --map spec)."""


def _plan(store: Store, out: Path, options: ExportOptions) -> _Plan:
    """Check the options against the database; raises `ExportError` with what to do."""
    from store import StoreError

    if options.format not in FORMATS:
        raise ExportError(f"unknown format {options.format!r}; use one of {', '.join(FORMATS)}")
    if options.rank_by not in RANK_BY:
        raise ExportError(f"unknown --rank-by {options.rank_by!r}; use {' or '.join(RANK_BY)}")
    regions = _canonical_regions(options.regions)
    if options.paper_subset and options.random_third:
        raise ExportError("--paper-subset and --random-third are two different thirds; pick one")
    if options.paper_subset and regions and regions != [Region.HIGH_AVG.value]:
        raise ExportError("--paper-subset is the HighAvg region; leave out --region")
    if options.random_third and regions:
        raise ExportError("--random-third draws from the whole map; leave out --region")
    if options.paper_subset:
        regions = [Region.HIGH_AVG.value]

    manifest_path = Path(f"{out}.manifest.json")
    container, gz = _container(out)
    _check_out(store, out, manifest_path)

    dataset_id = None
    if options.dataset is not None:
        ds = store.dataset_named(options.dataset)
        if ds is None:
            names = ", ".join(d["name"] for d in store.datasets()) or "none yet"
            raise ExportError(f"no dataset named {options.dataset!r}; this database has: {names}")
        dataset_id = int(ds["id"])

    needs_map = bool(regions) or options.random_third
    scorer = None
    if needs_map or options.scorer is not None or options.rank_by == "scorer":
        try:
            scorer = store.find_scorer(options.scorer)
        except StoreError as e:
            raise ExportError(str(e)) from None
    thresholds = None
    region_counts: dict[str, int] = {}
    if needs_map and scorer is not None:
        from auditor.analysis import ensure_map

        thresholds = ensure_map(store, scorer.id)
        region_counts = {
            str(k): v for k, v in store.region_counts(scorer.id).items() if k is not None
        }
        if not region_counts:
            raise ExportError(
                f"no map: no sample is on the map of scorer {scorer.name!r} "
                f"({scorer.config_hash}), because no sample has every response scored. "
                "Run `auditor score` first, or pick another scorer with --scorer"
            )
    map_scorer = scorer.id if needs_map and scorer is not None else None

    decisions = store.decisions() if options.apply_decisions or options.reviewed_only else {}
    decided = {
        sid
        for sid, d in decisions.items()
        if d.action in (Action.FLIP.value, Action.DROP.value, Action.KEEP.value)
        or d.best_idx is not None
    }
    only: set[int] | None = None
    if options.random_third and map_scorer is not None:
        mapped = store.mapped_sample_ids(map_scorer, dataset_id=dataset_id)
        # the paper's baseline: a seeded third of the mapped samples, drawn from them in id order
        only = set(random.Random(options.seed).sample(mapped, round(len(mapped) / 3)))
    if options.reviewed_only:
        only = decided if only is None else only & decided
    # nothing to write: say so before an earlier export is replaced by an empty file
    samples_in = store.export_count(dataset_id=dataset_id)
    if samples_in == 0:
        raise ExportError("no samples to export: ingest a file first (`auditor ingest FILE`)")
    if options.reviewed_only and not decided:
        raise ExportError(
            "--reviewed-only: no sample has a reviewer's decision yet; "
            "decide some in `auditor review` first"
        )
    total = store.export_count(dataset_id=dataset_id, scorer_id=map_scorer, regions=regions or None)
    if total == 0 or only == set():
        where = f" of dataset {options.dataset!r}" if options.dataset is not None else ""
        on_map = f" on the map of scorer {scorer.name!r}" if map_scorer and scorer else ""
        if regions and on_map:
            on_map = f" in {', '.join(regions)}{on_map}"
        raise ExportError(
            f"no sample{where} matches the selection{on_map}; "
            "see `auditor map` and `auditor info` for where the samples are"
        )

    return _Plan(
        out=out,
        manifest_path=manifest_path,
        container=container,
        gz=gz,
        regions=regions,
        dataset_id=dataset_id,
        scorer=scorer,
        map_scorer=map_scorer,
        score_of=scorer.id if options.rank_by == "scorer" and scorer is not None else None,
        thresholds=thresholds,
        region_counts=region_counts,
        decisions=decisions,
        decided=decided,
        only=only,
        samples_in=samples_in,
        total=total,
        formats={
            d["id"]: (d["format"], json.loads(d["options"] or "{}").get("map"))
            for d in store.datasets()
        },
    )


class _Exporter:
    """Turns chunks of samples into output rows and counts what it did."""

    def __init__(self, plan: _Plan, options: ExportOptions) -> None:
        self.plan = plan
        self.options = options
        self.apply = options.apply_decisions
        self.labeller = _Labeller(options.rank_by, options.seed)
        self.make_pairs = {
            "trl": self.labeller.one,
            "trl-chat": self.labeller.one,
            "pairs-all": self.labeller.every,
            "binarized": self.labeller.binarized,
        }.get(options.format)
        self.builder = _PairRows(options.format, as_text=plan.container != "parquet")
        self.plain_line = (
            self.builder.plain_line
            if self.builder.as_text and self.make_pairs is not None
            else None
        )
        self.selected = 0
        self.records = 0
        self.extra_records = 0
        """Records beyond the first of each sample, so samples out = records - extra."""
        self.applied: Counter[str] = Counter()
        self.by_reviewer: dict[str, Counter[str]] = {}
        self.not_applied: Counter[str] = Counter()
        self.datasets_out: Counter[int] = Counter()
        self.ids_hash: Any = hashlib.sha256()

    @property
    def quoted(self) -> bool:
        """Whether rows are built from texts the store quotes as JSON."""
        return self.builder.as_text and self.make_pairs is not None

    def _read(
        self,
        store: Store,
        after: int = 0,
        upto: int | None = None,
        ids: list[int] | None = None,
    ) -> Iterator[list[ExportSample]]:
        plan = self.plan
        return store.export_samples(
            dataset_id=plan.dataset_id,
            scorer_id=plan.map_scorer,
            regions=plan.regions or None,
            with_record=self.options.format == "original",
            score_of=plan.score_of,
            quoted=self.quoted,
            chunk=CHUNK,
            after=after,
            upto=upto,
            ids=ids,
        )

    def chunks(
        self, store: Store, after: int = 0, upto: int | None = None
    ) -> Iterator[tuple[int, list[Any]]]:
        """The output rows of the plan's samples with ids in (after, upto], a chunk of
        samples at a time, with the number of samples read."""
        pieces = _PAIR_HEADS.get(self.options.format) if self.quoted else None
        if pieces is None:
            for chunk in self._read(store, after, upto):
                yield len(chunk), self.rows(chunk)
            return
        plan, tail = self.plan, _PAIR_TAIL
        only = plan.only
        decisions = plan.decisions if self.apply else {}
        num, numbers = self.builder._num, self.builder.numbers
        datasets_out = self.datasets_out
        for heads in store.export_pair_lines(
            pieces,
            dataset_id=plan.dataset_id,
            scorer_id=plan.map_scorer,
            regions=plan.regions or None,
            chunk=CHUNK,
            after=after,
            upto=upto,
        ):
            lines = _Lines()
            ids: list[int] = []
            sets: list[int] = []
            others: list[int] = []
            for sid, dataset_id, _, head, sc, sr in heads:
                if only is not None and sid not in only:
                    continue
                if head is None or sid in decisions:
                    others.append(sid)
                    continue
                # a plain labelled pair with no decision: its line, as it is
                lines.append(tail % (head, numbers.get(sc) or num(sc), numbers.get(sr) or num(sr)))
                ids.append(sid)
                sets.append(dataset_id)
            if not others:  # the usual chunk: nothing more to do than count
                self.selected += len(ids)
                self.records += len(lines)
                datasets_out.update(sets)
                if ids:
                    self.ids_hash.update(_ids_text(ids))
                yield len(heads), lines
                continue
            # the same rows again, in order: lines made above, the other samples read whole
            full = {s.id: s for chunk in self._read(store, ids=others) for s in chunk}
            made = iter(zip(ids, sets, lines, strict=True))
            whole = set(others)
            items: list[Any] = []
            for sid, *_ in heads:
                if only is not None and sid not in only:
                    continue
                if sid not in whole:
                    items.append(next(made))
                elif sid in full:  # else gone since the first query
                    items.append(full[sid])
            yield len(heads), self.rows(items)

    def rows(self, chunk: list[Any]) -> list[Any]:
        """The output rows of one chunk of samples: `ExportSample`, or (id, dataset id,
        line) for a plain pair already made a line by `chunks`."""
        plan = self.plan
        rows: list[Any] = []
        selected: list[int] = []
        only, decisions, decided = plan.only, plan.decisions, plan.decided
        plain_line, datasets_out = self.plain_line, self.datasets_out
        for s in chunk:
            sid = s[0]
            if only is not None and sid not in only:
                continue
            selected.append(sid)
            if s.__class__ is tuple:
                rows.append(s[2])
                datasets_out[s[1]] += 1
                continue
            d = decisions.get(sid) if self.apply else None
            if d is None and plain_line is not None:
                line = plain_line(s)
                if line is not None:  # the bulk of most datasets: a plain labelled pair
                    rows.append(line)
                    datasets_out[s.dataset_id] += 1
                    continue
            kind = None
            if d is not None and sid in decided:
                kind = _decision_kind(s, d)
                if d.action == Action.DROP.value:
                    self._applied(kind, d)
                    continue
            if self.make_pairs is None:
                row, applied = _original_row(s, d, plan.formats, plan.container, self.not_applied)
                rows.append(row)
                produced = 1
            else:
                pairs = self.make_pairs(s, d)
                applied = not (kind == "flip" and _labelled(s.responses) is None)
                if not applied:
                    self.not_applied["flip_without_label"] += 1
                produced = len(pairs)
                rows.extend(self.builder.rows(s, pairs) if produced else ())
            if kind is not None and d is not None and applied:
                self._applied(kind, d)
            if produced:
                self.extra_records += produced - 1
                datasets_out[s.dataset_id] += 1
        self.selected += len(selected)
        self.records += len(rows)
        if selected:
            self.ids_hash.update(_ids_text(selected))
        return rows

    def state(self) -> dict[str, Any]:
        """What this exporter counted, for another's `merge` (see `_SecondExporter`)."""
        return {
            "selected": self.selected,
            "records": self.records,
            "extra_records": self.extra_records,
            "applied": self.applied,
            "by_reviewer": self.by_reviewer,
            "not_applied": self.not_applied,
            "datasets_out": self.datasets_out,
            "why_none": self.labeller.why_none,
        }

    def merge(self, part: dict[str, Any]) -> None:
        """Add the second process's counts (its sample ids are hashed as they come)."""
        self.selected += part["selected"]
        self.records += part["records"]
        self.extra_records += part["extra_records"]
        self.applied.update(part["applied"])
        for reviewer, kinds in part["by_reviewer"].items():
            self.by_reviewer.setdefault(reviewer, Counter()).update(kinds)
        self.not_applied.update(part["not_applied"])
        self.datasets_out.update(part["datasets_out"])
        self.labeller.why_none.update(part["why_none"])

    def _applied(self, kind: str, d: DecisionState) -> None:
        self.applied[kind] += 1
        self.by_reviewer.setdefault(d.reviewer or "?", Counter())[kind] += 1

    def report(self, seconds: float) -> ExportReport:
        """What was exported, with warnings about what was left out."""
        plan, why_none = self.plan, self.labeller.why_none
        report = ExportReport(
            str(plan.out),
            str(plan.manifest_path),
            self.options.format,
            samples_in=plan.samples_in,
            selected=self.selected,
            samples_out=self.records - self.extra_records,
            records_out=self.records,
            seconds=seconds,
            decisions=dict(self.applied),
        )
        report.counts = {
            "samples_in_scope": plan.samples_in,
            "in_selected_regions": plan.total,
            "selected": report.selected,
            "dropped_by_decision": self.applied.get("drop", 0),
            **{f"no_pair_{k}": v for k, v in sorted(why_none.items())},
            "samples_out": report.samples_out,
            "records_out": report.records_out,
        }
        if report.selected == 0:
            report.warnings.append("no sample matched the selection; the file is empty")
        mixed = sorted({plan.formats[i][0] for i in self.datasets_out if i in plan.formats})
        if self.options.format == "original" and len(mixed) > 1:
            report.warnings.append(
                f"the records come in {len(mixed)} input formats ({', '.join(mixed)}); "
                "to read them back, export each with --dataset NAME"
            )
        if self.not_applied:
            report.warnings.append(
                "decisions the format cannot express, left out: "
                + ", ".join(
                    f"{n} {k.replace('_', ' ')}" for k, n in sorted(self.not_applied.items())
                )
            )
        if why_none:
            hint = why_none.get("unscored") and self.options.rank_by == "annotations"
            report.warnings.append(
                "samples that gave no pair: "
                + ", ".join(f"{n:,} {k.replace('_', ' ')}" for k, n in sorted(why_none.items()))
                + (" (try --rank-by scorer)" if hint else "")
            )
        return report

    def manifest(self, store: Store, report: ExportReport, digest: str) -> dict[str, Any]:
        """Everything needed to trust and rebuild the file."""
        plan, options, scorer = self.plan, self.options, self.plan.scorer
        # pinned to the scorer used, which "the newest" may not be next time
        pinned = dataclasses.replace(options, scorer=scorer.config_hash if scorer else None)
        return {
            "tool": {"name": "alignment-auditor", "version": _tool_version()},
            "command_line": options.command_line or options.as_cli(plan.out, store.path),
            "rebuild_with": pinned.as_cli(plan.out, store.path),
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "output": {
                "path": str(plan.out),
                "format": options.format,
                "container": plan.container,
                "gzip": plan.gz,
                "sha256": digest,
                "records": report.records_out,
            },
            "database": str(store.path),
            "sources": [
                {
                    "name": d["name"],
                    "source_path": d["source_path"],
                    "format": d["format"],
                    "content_hash": d["content_hash"],
                    "samples_exported": self.datasets_out.get(d["id"], 0),
                }
                for d in store.datasets()
                if plan.dataset_id is None or d["id"] == plan.dataset_id
            ],
            "scorer": None
            if scorer is None
            else {
                "name": scorer.name,
                "kind": scorer.kind,
                "config": scorer.config,
                "config_hash": scorer.config_hash,
            },
            "map": None
            if plan.thresholds is None
            else {"thresholds": plan.thresholds, "region_counts": plan.region_counts},
            "selection": {
                "regions": plan.regions,
                "paper_subset": options.paper_subset,
                "random_third": options.random_third,
                "seed": options.seed,
                "dataset": options.dataset,
                "reviewed_only": options.reviewed_only,
                "decisions": "applied" if self.apply else "ignored",
                "rank_by": options.rank_by,
                "sample_ids_sha256": self.ids_hash.hexdigest(),
            },
            "counts": report.counts,
            "decisions": {
                "applied": dict(self.applied),
                "by_reviewer": {k: dict(v) for k, v in sorted(self.by_reviewer.items())},
                "not_applied": dict(self.not_applied),
            },
            "warnings": report.warnings,
            "seconds": round(report.seconds, 3),
        }


def export(
    store: Store,
    out_path: str | os.PathLike[str],
    options: ExportOptions,
    *,
    on_progress: Callable[[int, int], None] | None = None,
    workers: int | None = None,
) -> ExportReport:
    """Write the selected samples to ``out_path`` in ``options.format`` and a manifest beside it.

    ``workers``: 2 shares a JSON Lines export with a second process, by stripes;
    by default when the selection has `PARALLEL_MIN` samples and the machine two cores.

    ``on_progress(done, total)`` is called after every chunk of samples; an exception
    raised from it (or anywhere) stops the export and leaves any earlier file untouched.
    Raises `ExportError` on bad input.
    """
    started = time.perf_counter()
    plan = _plan(store, Path(out_path), options)
    run = _Exporter(plan, options)
    stripes = _stripes(store, plan, workers)
    writer = _Writer(plan.out, plan.container, plan.gz, options.format)
    second: _SecondExporter | None = None
    try:
        if len(stripes) > 1:
            second = _SecondExporter.start(store, plan, options, stripes[1::2])
            if second is None:  # no second process here: this one does every stripe
                stripes = [(0, stripes[-1][1])]
        done = 0
        if on_progress is not None:
            on_progress(0, plan.total)
        for k, (after, upto) in enumerate(stripes):
            if k % 2:  # the second process's stripe: its lines, in order
                assert second is not None
                for n, data in second.stripe():
                    writer.write_bytes(data)
                    done += n
                    if on_progress is not None:
                        on_progress(done, plan.total)
                run.ids_hash.update(second.stripe_ids)
                continue
            for n, rows in run.chunks(store, after, upto):
                writer.write(rows)
                done += n
                if on_progress is not None:
                    on_progress(done, plan.total)
        if second is not None:
            run.merge(second.result())
            if done != plan.total:  # it read another database, or another state of it
                raise ExportError(
                    f"the export's two processes read {done:,} samples of the "
                    f"{plan.total:,} selected; nothing was written. Try --workers 1"
                )
        digest = writer.finish()
        report = run.report(time.perf_counter() - started)
        text = json.dumps(run.manifest(store, report, digest), indent=2, ensure_ascii=False)
        manifest_tmp = _write_temp(plan.manifest_path, text + "\n")
        # both files are complete before either is renamed: only the moment between the
        # two renames can leave a new file beside an older manifest
        try:
            writer.publish()
            os.replace(manifest_tmp, plan.manifest_path)
        except BaseException:
            manifest_tmp.unlink(missing_ok=True)
            raise
    except BaseException:
        writer.abort()
        raise
    finally:
        if second is not None:
            second.close()
    return report


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))  # the cores this process may use
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _stripes(store: Store, plan: _Plan, workers: int | None) -> list[tuple[int, int | None]]:
    """The id ranges (after, upto] of the export's stripes: one for one process."""
    if workers is None:
        workers = 2 if _cores() > 1 and plan.total >= PARALLEL_MIN else 1
    if (
        workers < 2
        or plan.container != "jsonl"
        or store.file is None  # a second process cannot open a database in memory
        or store.conn.in_transaction  # nor see what this one has not committed
    ):
        return [(0, None)]
    bounds = store.export_stripes(
        dataset_id=plan.dataset_id,
        scorer_id=plan.map_scorer,
        regions=plan.regions or None,
        size=STRIPE,
    )
    # the last bound is the last sample: samples added meanwhile are not this export's
    return list(zip([0, *bounds], bounds, strict=False))


_SECOND_BOOT = (
    "import pickle, sys; sys.path[:0] = pickle.load(sys.stdin.buffer); "
    "from auditor.export import _second_exporter_main; _second_exporter_main()"
)


class _SecondExporter:
    """A second process that builds the lines of every other stripe of a JSON Lines export.

    The first process writes and hashes every line, in order, so the file is the same as
    one process makes. The second is a plain ``python -c`` with pickled arguments, not
    multiprocessing's: it must neither inherit the caller's threads (the review app
    exports from one) nor re-run a caller's main script, which need not be guarded.
    """

    def __init__(self, proc: Any, stderr: IO[bytes]) -> None:
        self.stripe_ids = b""
        """The sample ids of the stripe `stripe` gave last, as `_Exporter` hashes them."""
        self._proc = proc
        self._stderr = stderr
        self._inbox: queue.Queue[tuple[Any, ...]] = queue.Queue()
        self._closing = threading.Event()
        self._held = 0
        """Bytes of lines read and not yet taken: at most `_INBOX_BYTES` past one chunk."""
        self._taken = threading.Condition()
        self._reader = threading.Thread(target=self._read, name="second-exporter", daemon=True)
        self._reader.start()

    @classmethod
    def start(
        cls,
        store: Store,
        plan: _Plan,
        options: ExportOptions,
        stripes: list[tuple[int, int | None]],
    ) -> _SecondExporter | None:
        """Start the process on these stripes; None when it cannot be started."""
        import pickle
        import subprocess
        import sys
        import tempfile

        stderr = tempfile.TemporaryFile()  # noqa: SIM115 - closed by close()
        try:
            proc = subprocess.Popen(
                [sys.executable, "-c", _SECOND_BOOT],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=stderr,
            )
        except OSError:
            stderr.close()
            return None
        with contextlib.suppress(OSError, AttributeError, ImportError):
            import fcntl  # Linux: a bigger pipe, fewer round trips a chunk

            assert proc.stdout is not None
            fcntl.fcntl(proc.stdout.fileno(), fcntl.F_SETPIPE_SZ, 1 << 20)
        second = cls(proc, stderr)
        assert proc.stdin is not None
        with contextlib.suppress(BrokenPipeError), proc.stdin as f:
            f.write(pickle.dumps([p for p in sys.path if p]))
            f.write(pickle.dumps((str(store.file), plan, options, stripes)))
        return second

    def _read(self) -> None:
        import pickle

        assert self._proc.stdout is not None
        with self._proc.stdout as f:
            while not self._closing.is_set():
                try:
                    message = pickle.load(f)
                except Exception:  # the end of its output
                    message = ("gone",)
                size = len(message[2]) if message[0] == "data" else 0
                with self._taken:
                    # not reading the pipe is what makes the second process wait
                    while self._held and self._held + size > _INBOX_BYTES:
                        if self._closing.is_set():
                            return
                        self._taken.wait(0.1)
                    self._held += size
                self._inbox.put(message)
                if message[0] == "gone":
                    return

    def _next(self) -> tuple[Any, ...]:
        message = self._inbox.get()
        if message[0] == "data":
            with self._taken:
                self._held -= len(message[2])
                self._taken.notify()
        if message[0] == "error":
            _, kind, text = message
            if kind == "KeyboardInterrupt":
                raise KeyboardInterrupt
            if kind in ("ExportError", "StoreError"):
                raise ExportError(text)
            raise ExportError(f"the export's second process failed: {kind}: {text}")
        if message[0] == "gone":
            code = self._proc.wait()
            self._stderr.seek(0)
            said = self._stderr.read().decode("utf-8", "replace").strip().splitlines()
            raise ExportError(
                f"the export's second process stopped (exit code {code}) before it was "
                f"done; nothing was written{': ' + said[-1] if said else ''}"
            )
        return message

    def stripe(self) -> Iterator[tuple[int, bytes]]:
        """The next stripe's lines: (samples read, JSON lines) a chunk at a time."""
        while (message := self._next())[0] == "data":
            yield message[1], message[2]
        self.stripe_ids = message[1]

    def result(self) -> dict[str, Any]:
        """What the second process counted (see `_Exporter.state`), once it is done."""
        message = self._next()
        self._proc.wait()
        return dict(message[1])

    def close(self) -> None:
        """Stop the process if it still runs, and the thread reading it."""
        self._closing.set()
        if self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()
        self._reader.join()
        self._stderr.close()


class _Ids:
    """Collects the sample ids the second process exported, for the first to hash."""

    def __init__(self) -> None:
        self.data = bytearray()

    def update(self, b: bytes) -> None:
        self.data += b


def _second_exporter_main() -> None:
    """The second process of `_SecondExporter`: build the lines of the stripes given."""
    import pickle
    import sys
    import traceback

    from store import Store

    # the pipe to the first process is its own file: a stray print must not corrupt it
    out = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())

    def say(*message: Any) -> None:
        pickle.dump(message, out, protocol=5)
        out.flush()

    try:
        db, plan, options, stripes = pickle.load(sys.stdin.buffer)
        with Store(db, read_only=True) as store:
            run = _Exporter(plan, options)
            ids = run.ids_hash = _Ids()
            for after, upto in stripes:
                for n, rows in run.chunks(store, after, upto):
                    say("data", n, _jsonl(rows))
                say("stripe", bytes(ids.data))
                ids.data.clear()
        say("result", run.state())
    except BrokenPipeError:
        pass  # the first process stopped: nobody to tell
    except BaseException as e:  # the first process reports it
        traceback.print_exc()
        with contextlib.suppress(BrokenPipeError):
            say("error", type(e).__name__, str(e))


def _decision_kind(s: ExportSample, d: DecisionState) -> str:
    if d.action in (Action.FLIP.value, Action.DROP.value):
        return str(d.action)
    if d.best_idx is not None:
        if _labelled(s.responses) is not None:  # naming a pair's rejected one is a flip
            return "flip" if is_flipped(s.responses, d) else "keep"
        return "best"
    return "keep"


_ONE_USER_TURN = b'[{"role": "user", "content": %b}]'
_PLAIN = b'{"prompt": %b, "chosen": %b, "rejected": %b, "score_chosen": %b, "score_rejected": %b}'
_TRL_HEAD = ('{"prompt": ', ', "chosen": ', ', "rejected": ', ', "score_chosen": ')
_PAIR_HEADS = {
    "trl": _TRL_HEAD,
    "pairs-all": _TRL_HEAD,
    "binarized": _TRL_HEAD,
    "trl-chat": (
        '{"prompt": [{"role": "user", "content": ',
        '}], "chosen": [{"role": "assistant", "content": ',
        '}], "rejected": [{"role": "assistant", "content": ',
        '}], "score_chosen": ',
    ),
}
"""How `Store.export_pair_lines` starts the line of a plain pair in each format: the same
line as `_PairRows` makes of one."""
_PAIR_TAIL = b'%b%b, "score_rejected": %b}'


def _number(v: float | None) -> bytes:
    if v is None or v != v or v in (math.inf, -math.inf):
        return b"null"  # JSON has no NaN or infinity
    return repr(float(v)).encode()


class _PairRows:
    """Output rows for the pair formats: JSON lines as UTF-8 bytes, or dicts for Parquet.

    For JSON output the store hands over texts already quoted as JSON, in UTF-8 bytes,
    so the bulk of the data is never decoded into Python strings and encoded again.
    """

    def __init__(self, fmt: str, *, as_text: bool) -> None:
        self.chat = fmt == "trl-chat"
        self.as_text = as_text
        self.numbers: dict[float | None, bytes] = {}

    def _num(self, v: float | None) -> bytes:
        text = self.numbers.get(v)
        if text is None:
            text = self.numbers[v] = _number(v)
        return text

    def plain_line(self, s: ExportSample) -> bytes | None:
        """The line of a one-turn labelled pair, or None for anything less simple."""
        # indexes, not field names: this runs once per sample of a million-pair export
        resp = s[7]
        if len(resp) != 2 or s[2] != "pair":
            return None
        c, r = resp
        if c[ROLE] != "chosen" or r[ROLE] != "rejected":
            return None
        if self.chat:
            return self.rows(s, [(c[TEXT], r[TEXT], c[RATING], r[RATING])])[0]
        if s[3]:  # the store leaves the conversation empty when it is one user turn
            return None
        numbers = self.numbers
        sc, sr = c[RATING], r[RATING]
        return _PLAIN % (
            s[4],
            c[TEXT],
            r[TEXT],
            numbers.get(sc) or self._num(sc),
            numbers.get(sr) or self._num(sr),
        )

    def rows(self, s: ExportSample, pairs: list[Pair]) -> list[Any]:
        """One row for each pair of a sample."""
        conv = s.conversation
        if not self.as_text:
            if not conv:  # one user turn: its text is the prompt
                prompt: Any = [{"role": "user", "content": s.prompt}] if self.chat else s.prompt
            elif self.chat:
                prompt = json.loads(conv)
            else:
                prompt = prompt_string(json.loads(conv))
            return [self._dict(prompt, p) for p in pairs]
        num = self._num
        if self.chat:  # the conversation is already the messages as JSON
            if not conv:
                conv = _ONE_USER_TURN % s.prompt  # the prompt is quoted by the store
            return [
                b'{"prompt": %b, "chosen": [{"role": "assistant", "content": %b}], '
                b'"rejected": [{"role": "assistant", "content": %b}], '
                b'"score_chosen": %b, "score_rejected": %b}' % (conv, c, r, num(sc), num(sr))
                for c, r, sc, sr in pairs
            ]
        if not conv:
            prompt = s.prompt  # one user turn, quoted by the store
        else:
            prompt = encode_basestring(prompt_string(json.loads(conv))).encode()
        return [
            b'{"prompt": %b, "chosen": %b, "rejected": %b, '
            b'"score_chosen": %b, "score_rejected": %b}' % (prompt, c, r, num(sc), num(sr))
            for c, r, sc, sr in pairs
        ]

    def _dict(self, prompt: Any, p: Pair) -> dict[str, Any]:
        c, r, sc, sr = p
        if self.chat:
            return {
                "prompt": prompt,
                "chosen": [{"role": "assistant", "content": c}],
                "rejected": [{"role": "assistant", "content": r}],
                "score_chosen": sc,
                "score_rejected": sr,
            }
        return {
            "prompt": prompt,
            "chosen": c,
            "rejected": r,
            "score_chosen": sc,
            "score_rejected": sr,
        }


def _original_row(
    s: ExportSample,
    d: DecisionState | None,
    formats: dict[int, tuple[str, str | None]],
    container: str,
    not_applied: Counter[str],
) -> tuple[bytes | str, bool]:
    """The source record with the decision applied, and whether it could be."""
    raw = s.record or b""
    applied = True
    if d is not None:
        fmt, map_spec = formats.get(s.dataset_id, ("", None))
        labelled = _labelled(s.responses) is not None
        if labelled and is_flipped(s.responses, d):
            record = json.loads(raw)
            if flip_record(fmt, record, map_spec):
                return dumps_like(record, raw.decode("utf-8")), True
            not_applied[f"flip_in_{fmt or 'unknown'}_records"] += 1
            applied = False
        elif d.action == Action.FLIP.value:
            not_applied["flip_without_label"] += 1
            applied = False
        elif d.best_idx is not None and not labelled:
            not_applied["best_response_in_original_records"] += 1
            applied = False
    if b"\n" in raw and container != "json":
        # a pretty-printed array element: one line
        return dumps_like(json.loads(raw), raw.decode("utf-8")), applied
    return raw, applied
