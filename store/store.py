"""`Store`: opens and migrates the database and offers verbs in the domain's words."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import itertools
import json
import os
import sqlite3
import threading
import typing
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from operator import itemgetter
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from auditor.model import Action, SampleIn, ScoreIn, prompt_text
from store.migrations import migrate

if TYPE_CHECKING:
    import sqlite_utils

DECIDING_ACTIONS = (Action.FLIP.value, Action.DROP.value, Action.KEEP.value)


EncodedSample = tuple[tuple[Any, ...], list[tuple[Any, ...]]]
"""A sample's column values (without its record) and its responses' column values."""

ONE_USER_TURN = ""
"""``samples.conversation`` of a conversation that is one user turn: its text is ``prompt``.

Most preference data has one-turn prompts; storing them once saves a copy of every prompt
and lets readers (the export above all) know a plain prompt without parsing JSON."""


def _dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def encode_conversation(conversation: list[dict[str, str]]) -> tuple[str, str]:
    """The ``conversation`` and ``prompt`` column values of a conversation."""
    if len(conversation) == 1:
        turn = conversation[0]
        if turn.get("role") == "user" and len(turn) == 2 and "content" in turn:
            return ONE_USER_TURN, turn["content"]
    return _dumps(conversation), prompt_text(conversation)


def decode_conversation(text: str, prompt: str) -> list[dict[str, str]]:
    """The turns stored by `encode_conversation`."""
    if text == ONE_USER_TURN:
        return [{"role": "user", "content": prompt}]
    return json.loads(text)


def encode_sample(s: SampleIn) -> EncodedSample:
    """The column values of a sample (without its record) and of its responses (without ids)."""
    conversation, prompt = encode_conversation(s.conversation)
    sample = (
        s.row,
        s.kind,
        conversation,
        prompt,
        s.source,
        s.reference,
        ",".join(s.flags) if s.flags else None,
    )
    responses = [
        (j, r.role.value, r.model, r.text, r.rating, _dumps(r.ratings) if r.ratings else None)
        for j, r in enumerate(s.responses)
    ]
    return sample, responses


def encode_pair(
    row: int, conversation: list[dict[str, str]], chosen: str, rejected: str, flags: str | None
) -> EncodedSample:
    """`encode_sample` of a plain labelled pair (no model, rating, source or reference)."""
    conv, prompt = encode_conversation(conversation)
    return (row, "pair", conv, prompt, None, None, flags), [
        (0, "chosen", None, chosen, None, None),
        (1, "rejected", None, rejected, None, None),
    ]


_IMAGE_SCHEMA = """
    CREATE TABLE samples (id INTEGER PRIMARY KEY, row, kind, conversation, prompt, source,
        reference, flags, record);
    CREATE TABLE responses (sample_id, idx, role, model, text, rating, ratings);
"""
_SAMPLE_COLUMNS = "row, kind, conversation, prompt, source, reference, flags, record"
_RESPONSE_COLUMNS = "idx, role, model, text, rating, ratings"


def sample_image(encoded: Sequence[EncodedSample], records: Sequence[str | bytes]) -> bytes:
    """Encoded samples and their records as a small SQLite database, serialized.

    A parse worker builds it, so the per-row work of binding values happens in parallel;
    the writer then copies whole tables with `Store.merge_image`, in SQLite alone.
    Samples are numbered from 1; the merge shifts them after the samples already stored.
    """
    conn = sqlite3.connect(":memory:", isolation_level=None)
    try:
        conn.executescript(_IMAGE_SCHEMA)
        conn.execute("BEGIN")
        conn.executemany(
            f"INSERT INTO samples (id, {_SAMPLE_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?)",
            [
                (i, *sample, record)
                for i, ((sample, _), record) in enumerate(zip(encoded, records, strict=True), 1)
            ],
        )
        conn.executemany(
            f"INSERT INTO responses (sample_id, {_RESPONSE_COLUMNS}) VALUES (?,?,?,?,?,?,?)",
            [(i, *r) for i, (_, responses) in enumerate(encoded, 1) for r in responses],
        )
        conn.execute("COMMIT")
        return conn.serialize()
    finally:
        conn.close()


@functools.cache
def images_mergeable() -> bool:
    """Whether this SQLite loads one `sample_image` after another into an attached
    database within one transaction (SQLite 3.40 does; later ones may refuse a schema
    already read in the transaction, and some builds cannot serialize at all)."""
    if not hasattr(sqlite3.Connection, "serialize"):
        return False
    image = sample_image([], [])
    conn = sqlite3.connect(":memory:", isolation_level=None)
    try:
        conn.execute("CREATE TABLE t (x)")
        conn.execute("ATTACH ':memory:' AS sample_image")
        conn.execute("BEGIN")
        for _ in range(2):
            conn.deserialize(image, name="sample_image")
            conn.execute("INSERT INTO t SELECT count(*) FROM sample_image.samples")
        conn.execute("COMMIT")
        return True
    except sqlite3.Error:
        return False
    finally:
        conn.close()


def _image_rows(image: bytes) -> tuple[list[EncodedSample], list[str | bytes]]:
    """The samples of a `sample_image`, as `encode_sample` gives them."""
    conn = sqlite3.connect(":memory:")
    try:
        conn.deserialize(image)
        samples = conn.execute(f"SELECT id, {_SAMPLE_COLUMNS} FROM samples ORDER BY id").fetchall()
        responses: dict[int, list[tuple[Any, ...]]] = {}
        for r in conn.execute(
            f"SELECT sample_id, {_RESPONSE_COLUMNS} FROM responses ORDER BY rowid"
        ):
            responses.setdefault(r[0], []).append(r[1:])
    finally:
        conn.close()
    encoded = [(s[1:-1], responses.get(s[0], [])) for s in samples]
    return encoded, [s[-1] for s in samples]


class StoreError(Exception):
    """A store operation that cannot go ahead, with a message meant for the user."""


def default_db_path(explicit: str | os.PathLike[str] | None = None) -> Path:
    """``--db PATH``, else ``$AUDITOR_DB``, else ``./auditor.db``."""
    if explicit:
        return Path(explicit)
    env = os.environ.get("AUDITOR_DB")
    return Path(env) if env else Path("auditor.db")


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def config_hash(config: dict[str, Any]) -> str:
    """A stable hash of a scorer configuration (canonical JSON, sorted keys)."""
    canonical = json.dumps(config, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class ScorerRow:
    """A stored scorer configuration."""

    id: int
    name: str
    kind: str
    config: dict[str, Any]
    config_hash: str


@dataclass(frozen=True, slots=True)
class PendingResponse:
    """A response that still needs a score from some scorer, with what a scorer needs to see."""

    response_id: int
    sample_id: int
    idx: int
    role: str
    text: str
    conversation: list[dict[str, str]]
    reference: str | None


@dataclass(frozen=True, slots=True)
class DecisionState:
    """The current decision on a sample."""

    sample_id: int
    action: str | None
    best_idx: int | None
    note: str | None
    reviewer: str | None
    updated_at: str | None


class Store:
    """A preference-data audit database.

    Safe to share between threads (one connection behind a lock) and between processes
    (WAL journal, busy timeout).
    """

    def __init__(
        self, path: str | os.PathLike[str], *, timeout: float = 30.0, read_only: bool = False
    ) -> None:
        self.path = Path(path)
        self.file: Path | None = None if str(path) == ":memory:" else self.path.resolve()
        """The database file's absolute path (None in memory), for another process."""
        if self.path.parent and not self.path.parent.exists():
            raise StoreError(f"{self.path}: the folder {self.path.parent} does not exist")
        if read_only and self.file is not None:
            if not self.file.exists():
                raise StoreError(f"{self.path}: no such database")
            conn = sqlite3.connect(
                f"{self.file.as_uri()}?mode=ro",
                uri=True,
                timeout=timeout,
                check_same_thread=False,
                isolation_level=None,
            )
            self._timeout_ms = int(timeout * 1000)
            conn.execute(f"PRAGMA busy_timeout={self._timeout_ms}")
            self.conn = conn
            self._lock = threading.RLock()
            self._depth = 0
            self._image_attached = False
            return
        conn = sqlite3.connect(
            str(self.path), timeout=timeout, check_same_thread=False, isolation_level=None
        )
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        if tables and "_migrations" not in tables:
            # another program's database: migrating it (or turning on WAL) would change it
            conn.close()
            raise StoreError(
                f"{self.path}: a SQLite database of another program (tables: "
                f"{', '.join(sorted(tables)[:5])}), not an auditor database; give another --db"
            )
        conn.execute("PRAGMA page_size=16384")  # only takes effect on a new database
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("PRAGMA synchronous=NORMAL")
        self._timeout_ms = int(timeout * 1000)
        conn.execute(f"PRAGMA busy_timeout={self._timeout_ms}")
        self.conn = conn
        self._lock = threading.RLock()
        self._depth = 0
        self._image_attached = False
        with self._lock:
            migrate(conn)

    @functools.cached_property
    def db(self) -> sqlite_utils.Database:
        """sqlite-utils over the same connection, loaded on first use: importing it loads
        pandas (0.3 s), which an ingest, the busiest command, never needs."""
        import sqlite_utils

        return sqlite_utils.Database(self.conn)

    # -- lifecycle -------------------------------------------------------------------

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self.conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """An atomic unit: BEGIN IMMEDIATE at the outermost level, SAVEPOINTs inside."""
        with self._lock:
            if self._depth == 0:
                try:
                    self.conn.execute("BEGIN IMMEDIATE")
                except sqlite3.OperationalError as e:
                    if "locked" not in str(e) and "busy" not in str(e):
                        raise
                    raise StoreError(
                        f"{self.path}: the database is busy: another process (an ingest, a "
                        f"scoring run) kept it locked for {self._timeout_ms / 1000:g} s; "
                        "try again when it is done"
                    ) from None
            else:
                self.conn.execute(f"SAVEPOINT sp{self._depth}")
            self._depth += 1
            try:
                yield
            except BaseException:
                self._depth -= 1
                if self._depth == 0:
                    self.conn.execute("ROLLBACK")
                else:
                    self.conn.execute(f"ROLLBACK TO sp{self._depth}")
                    self.conn.execute(f"RELEASE sp{self._depth}")
                raise
            else:
                self._depth -= 1
                if self._depth == 0:
                    self.conn.execute("COMMIT")
                else:
                    self.conn.execute(f"RELEASE sp{self._depth}")

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return self.conn.execute(sql, params).fetchall()

    def _dicts(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        with self._lock:
            cur = self.conn.execute(sql, params)
            names = [d[0] for d in cur.description]
            return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]

    # -- datasets and ingest -------------------------------------------------------------

    def dataset_by_hash(self, content_hash: str) -> dict[str, Any] | None:
        """The dataset ingested from a file with this content hash, if any."""
        rows = self._dicts("SELECT * FROM datasets WHERE content_hash = ?", [content_hash])
        return rows[0] if rows else None

    def add_dataset(
        self,
        *,
        name: str,
        source_path: str,
        format: str,
        content_hash: str,
        options: dict[str, Any] | None = None,
    ) -> int:
        """Register a dataset (call inside the ingest transaction); returns its id."""
        taken = {r[0] for r in self._query("SELECT name FROM datasets")}
        unique, n = name, 2
        while unique in taken:
            unique, n = f"{name}-{n}", n + 1
        with self._lock:
            cur = self.conn.execute(
                "INSERT INTO datasets (name, source_path, format, content_hash, ingested_at,"
                " options) VALUES (?, ?, ?, ?, ?, ?)",
                (unique, source_path, format, content_hash, _now(), json.dumps(options or {})),
            )
        assert cur.lastrowid is not None
        return cur.lastrowid

    def finish_dataset(
        self, dataset_id: int, *, records: int, samples: int, responses: int, rejects: int
    ) -> None:
        """Record the final counts of an ingest."""
        with self._lock:
            self.conn.execute(
                "UPDATE datasets SET n_records=?, n_samples=?, n_responses=?, n_rejects=?"
                " WHERE id=?",
                (records, samples, responses, rejects, dataset_id),
            )

    def add_samples(self, dataset_id: int, samples: Sequence[SampleIn]) -> int:
        """Insert a batch of samples with their responses; returns the responses added."""
        return self.add_encoded(
            dataset_id, [encode_sample(s) for s in samples], [s.record for s in samples]
        )

    @contextlib.contextmanager
    def bulk(self) -> Iterator[None]:
        """Settings for one big write: a larger page cache and, on an empty database that
        no other connection is using, a rollback journal instead of WAL (WAL would write
        every new page twice). WAL is restored afterwards."""
        with self._lock:
            self.conn.execute("PRAGMA cache_size=-65536")
            switched = False
            empty = not self._query("SELECT 1 FROM samples LIMIT 1")
            if empty and self._depth == 0:
                self.conn.execute("PRAGMA busy_timeout=0")
                try:
                    mode = self.conn.execute("PRAGMA journal_mode=DELETE").fetchone()[0]
                    switched = mode == "delete"
                except sqlite3.OperationalError:
                    switched = False  # another connection is reading: stay in WAL
                finally:
                    self.conn.execute(f"PRAGMA busy_timeout={self._timeout_ms}")
            try:
                yield
            finally:
                self._detach_image()
                if switched:
                    self.conn.execute("PRAGMA journal_mode=WAL")
                self.conn.execute("PRAGMA cache_size=-2000")

    def add_encoded(
        self,
        dataset_id: int,
        encoded: Sequence[EncodedSample],
        records: Sequence[str | bytes],
    ) -> int:
        """Insert samples encoded by `encode_sample` (e.g. in a worker process) with their
        source records verbatim, one for each sample."""
        with self._lock:
            return self._insert_encoded(dataset_id, encoded, records)

    def bulk_writer(self, dataset_id: int) -> BulkWriter:
        """A writer that inserts batches on its own thread, inside the caller's transaction.

        sqlite3 releases the GIL while SQLite works, so the caller parses the next batch
        while this one is written. Until `BulkWriter.close`, the caller (which holds the
        store's lock through `transaction`) must not use the store itself.
        """
        return BulkWriter(self, dataset_id)

    def _insert_encoded(
        self, dataset_id: int, encoded: Sequence[EncodedSample], records: Sequence[str | bytes]
    ) -> int:
        if not encoded:
            return 0
        if len(records) != len(encoded):
            raise StoreError(f"{len(encoded)} samples but {len(records)} records")
        cur = self.conn.cursor()
        first = cur.execute("SELECT coalesce(max(id), 0) + 1 FROM samples").fetchone()[0]
        cur.executemany(
            "INSERT INTO samples (id, dataset_id, row, kind, conversation, prompt, source,"
            " reference, flags, record) VALUES (?,?,?,?,?,?,?,?,?,?)",
            [
                (first + i, dataset_id, *sample, record)
                for i, ((sample, _), record) in enumerate(zip(encoded, records, strict=True))
            ],
        )
        rows = [
            (first + i, *response)
            for i, (_, responses) in enumerate(encoded)
            for response in responses
        ]
        cur.executemany(
            "INSERT INTO responses (sample_id, idx, role, model, text, rating, ratings)"
            " VALUES (?,?,?,?,?,?,?)",
            rows,
        )
        return len(rows)

    def merge_image(self, dataset_id: int, image: bytes) -> int:
        """Copy a `sample_image` into the samples and responses; returns the responses.

        Inside a transaction, the image is loaded into an attached in-memory database
        and copied with two INSERT … SELECT: no Python work per row."""
        with self._lock:
            return self._merge_image(dataset_id, image)

    def _merge_image(self, dataset_id: int, image: bytes) -> int:
        cur = self.conn.cursor()
        first = cur.execute("SELECT coalesce(max(id), 0) FROM samples").fetchone()[0]
        try:
            if not self._image_attached:
                cur.execute("ATTACH ':memory:' AS sample_image")
                self._image_attached = True
            self.conn.deserialize(image, name="sample_image")
        except (AttributeError, sqlite3.Error):
            # an SQLite that cannot load an image into an attached database here:
            # insert its rows one by one instead
            return self._insert_encoded(dataset_id, *_image_rows(image))
        cur.execute(
            f"INSERT INTO samples (id, dataset_id, {_SAMPLE_COLUMNS})"
            f" SELECT id + ?, ?, {_SAMPLE_COLUMNS} FROM sample_image.samples ORDER BY id",
            (first, dataset_id),
        )
        cur.execute(
            f"INSERT INTO responses (sample_id, {_RESPONSE_COLUMNS})"
            f" SELECT sample_id + ?, {_RESPONSE_COLUMNS} FROM sample_image.responses"
            " ORDER BY rowid",
            (first,),
        )
        return cur.rowcount

    def _detach_image(self) -> None:
        if self._image_attached:
            try:
                self.conn.execute("DETACH sample_image")
                self._image_attached = False
            except sqlite3.OperationalError:
                pass  # inside a transaction still: detached after the next bulk load

    def datasets(self) -> list[dict[str, Any]]:
        """Every dataset, oldest first."""
        with self._lock:
            return list(self.db["datasets"].rows_where(order_by="id"))

    def dataset_named(self, name: str) -> dict[str, Any] | None:
        """The dataset with this name, if any."""
        with self._lock:
            rows = list(self.db["datasets"].rows_where("name = ?", [name]))
        return rows[0] if rows else None

    def info(self) -> dict[str, Any]:
        """Counts for `auditor info`: datasets, ratings coverage, scorers and score coverage."""
        datasets = []
        for d in self.datasets():
            rated, total = self._query(
                "SELECT count(r.rating), count(*) FROM responses r JOIN samples s"
                " ON s.id = r.sample_id WHERE s.dataset_id = ?",
                (d["id"],),
            )[0]
            kinds = dict(
                self._query(
                    "SELECT kind, count(*) FROM samples WHERE dataset_id=? GROUP BY kind",
                    (d["id"],),
                )
            )
            datasets.append(
                {
                    "name": d["name"],
                    "source_path": d["source_path"],
                    "format": d["format"],
                    "content_hash": d["content_hash"],
                    "ingested_at": d["ingested_at"],
                    "records": d["n_records"],
                    "samples": d["n_samples"],
                    "responses": d["n_responses"],
                    "rejects": d["n_rejects"],
                    "kinds": kinds,
                    "rated_responses": rated,
                    "rating_coverage": (rated / total) if total else 0.0,
                }
            )
        n_samples = self._query("SELECT count(*) FROM samples")[0][0]
        n_responses = self._query("SELECT count(*) FROM responses")[0][0]
        scorers = []
        for s in self.scorers():
            by_status = dict(
                self._query(
                    "SELECT status, count(*) FROM scores WHERE scorer_id=? GROUP BY status",
                    (s.id,),
                )
            )
            cost = self.scorer_cost(s.id)
            ok = by_status.get("ok", 0)
            scorers.append(
                {
                    "name": s.name,
                    "kind": s.kind,
                    "config_hash": s.config_hash,
                    "config": s.config,
                    "scores": by_status,
                    "coverage": (ok / n_responses) if n_responses else 0.0,
                    "cost_usd": cost,
                }
            )
        decided = dict(
            self._query(
                "SELECT action, count(*) FROM sample_state WHERE action IS NOT NULL GROUP BY action"
            )
        )
        return {
            "db": str(self.path),
            "datasets": datasets,
            "samples": n_samples,
            "responses": n_responses,
            "scorers": scorers,
            "decisions": decided,
        }

    # -- samples ----------------------------------------------------------------------

    def sample(self, sample_id: int) -> dict[str, Any] | None:
        """One sample with its responses (each with its role, model and ratings)."""
        with self._lock:  # one connection: a thread must not read mid-way through another's
            rows = list(self.db["samples"].rows_where("id = ?", [sample_id]))
            responses = list(
                self.db["responses"].rows_where("sample_id = ?", [sample_id], order_by="idx")
            )
        if not rows:
            return None
        s = rows[0]
        s["conversation"] = decode_conversation(s["conversation"], s["prompt"])
        s["flags"] = s["flags"].split(",") if s["flags"] else []
        if isinstance(s["record"], bytes):  # JSON lines are kept as the file's own bytes
            s["record"] = s["record"].decode("utf-8")
        s["responses"] = [
            {**r, "ratings": json.loads(r["ratings"]) if r["ratings"] else None} for r in responses
        ]
        return s

    def count_samples(self) -> int:
        """How many samples the database holds."""
        return int(self._query("SELECT count(*) FROM samples")[0][0])

    # -- scorers and scores ----------------------------------------------------------

    def scorer(self, name: str, kind: str, config: dict[str, Any]) -> ScorerRow:
        """The stored scorer with exactly this configuration, created if new."""
        h = config_hash(config)
        with self.transaction():
            found = self._query("SELECT id, name FROM scorers WHERE config_hash=?", (h,))
            if found:
                return ScorerRow(found[0][0], found[0][1], kind, config, h)
            cur = self.conn.execute(
                "INSERT INTO scorers (name, kind, config, config_hash, created_at)"
                " VALUES (?,?,?,?,?)",
                (name, kind, json.dumps(config, sort_keys=True), h, _now()),
            )
            assert cur.lastrowid is not None
            return ScorerRow(cur.lastrowid, name, kind, config, h)

    def scorers(self) -> list[ScorerRow]:
        """Every stored scorer configuration, oldest first."""
        return [
            ScorerRow(r[0], r[1], r[2], json.loads(r[3]), r[4])
            for r in self._query(
                "SELECT id, name, kind, config, config_hash FROM scorers ORDER BY id"
            )
        ]

    def find_scorer(self, ref: str | None) -> ScorerRow:
        """A scorer by name, config hash (or its prefix) or id; the newest with scores if None."""
        scorers = self.scorers()
        if not scorers:
            raise StoreError(
                "no scorer in this database yet: run `auditor score --scorer annotations` "
                "(or judge / reference) first"
            )
        if ref is None:
            with_scores = {
                r[0] for r in self._query("SELECT DISTINCT scorer_id FROM scores WHERE status='ok'")
            }
            candidates = [s for s in scorers if s.id in with_scores] or scorers
            return candidates[-1]
        matches = [s for s in scorers if s.name == ref or s.config_hash == ref or str(s.id) == ref]
        # a hash prefix only when nothing matches exactly, and only when it is unambiguous
        matches = matches or [s for s in scorers if ref and s.config_hash.startswith(ref)]
        if not matches:
            names = ", ".join(f"{s.name} ({s.config_hash})" for s in scorers)
            raise StoreError(f"no scorer named {ref!r}; this database has: {names}")
        if len({s.config_hash for s in matches}) > 1 and all(s.name != ref for s in matches):
            names = ", ".join(f"{s.name} ({s.config_hash})" for s in matches)
            raise StoreError(f"{ref!r} names more than one scorer: {names}; give more of the hash")
        return matches[-1]

    def pending_responses(
        self,
        scorer_id: int,
        *,
        retry_failed: bool = False,
        sample_ids: Sequence[int] | None = None,
        limit: int | None = None,
    ) -> list[PendingResponse]:
        """Responses with no usable score from this scorer, in sample order."""
        cond = "sc.response_id IS NULL"
        if retry_failed:
            cond = "(sc.response_id IS NULL OR sc.status != 'ok')"
        sql = (
            "SELECT r.id, r.sample_id, r.idx, r.role, r.text, s.conversation, s.reference,"
            " s.prompt"
            " FROM responses r JOIN samples s ON s.id = r.sample_id"
            " LEFT JOIN scores sc ON sc.response_id = r.id AND sc.scorer_id = ?"
            f" WHERE {cond}"
        )
        params: list[Any] = [scorer_id]
        if sample_ids is not None:
            ids = ",".join(str(int(i)) for i in sample_ids)
            sql += f" AND r.sample_id IN ({ids})"
        sql += " ORDER BY r.sample_id, r.idx"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        return [
            PendingResponse(r[0], r[1], r[2], r[3], r[4], decode_conversation(r[5], r[7]), r[6])
            for r in self._query(sql, params)
        ]

    def sample_ids(self, dataset: str | None = None) -> list[int]:
        """Every sample id, optionally of one dataset."""
        if dataset is None:
            return [r[0] for r in self._query("SELECT id FROM samples ORDER BY id")]
        return [
            r[0]
            for r in self._query(
                "SELECT s.id FROM samples s JOIN datasets d ON d.id = s.dataset_id"
                " WHERE d.name = ? ORDER BY s.id",
                (dataset,),
            )
        ]

    def rated_responses(self) -> Iterator[tuple[int, float | None, str | None]]:
        """``(response_id, rating, ratings_json)`` of every response, for the annotations scorer."""
        with self._lock:
            rows = self.conn.execute("SELECT id, rating, ratings FROM responses ORDER BY id")
            yield from rows.fetchall()

    def save_scores(self, scorer_id: int, scores: Iterable[ScoreIn]) -> int:
        """Record scores atomically; an ``ok`` score is never overwritten. Returns rows written."""
        now = _now()
        rows = [
            (
                s.response_id,
                scorer_id,
                s.value,
                s.status,
                s.rationale,
                s.raw,
                s.error,
                s.prompt_tokens,
                s.completion_tokens,
                s.cost,
                s.seed,
                now,
            )
            for s in scores
        ]
        if not rows:
            return 0
        with self.transaction():
            before = self.conn.total_changes
            self.conn.executemany(
                "INSERT INTO scores (response_id, scorer_id, value, status, rationale, raw,"
                " error, prompt_tokens, completion_tokens, cost, seed, created_at)"
                " VALUES (?,?,?,?,?,?,?,?,?,?,?,?)"
                " ON CONFLICT (scorer_id, response_id) DO UPDATE SET"
                " value=excluded.value, status=excluded.status, rationale=excluded.rationale,"
                " raw=excluded.raw, error=excluded.error,"
                " prompt_tokens=scores.prompt_tokens + excluded.prompt_tokens,"
                " completion_tokens=scores.completion_tokens + excluded.completion_tokens,"
                " cost=scores.cost + excluded.cost, seed=excluded.seed,"
                " attempts=scores.attempts + 1, created_at=excluded.created_at"
                " WHERE scores.status != 'ok'",
                rows,
            )
            return self.conn.total_changes - before

    def score_counts(self, scorer_id: int) -> dict[str, int]:
        """Scores of this scorer by status, plus ``total`` responses."""
        counts = dict(
            self._query(
                "SELECT status, count(*) FROM scores WHERE scorer_id=? GROUP BY status",
                (scorer_id,),
            )
        )
        counts["total"] = self._query("SELECT count(*) FROM responses")[0][0]
        return counts

    def failed_scores(self, scorer_id: int, limit: int = 20) -> list[dict[str, Any]]:
        """Failed or unparsable scores with their error and raw output, newest first."""
        return [
            {"response_id": r[0], "status": r[1], "error": r[2], "raw": r[3]}
            for r in self._query(
                "SELECT response_id, status, error, raw FROM scores"
                " WHERE scorer_id=? AND status != 'ok' ORDER BY created_at DESC LIMIT ?",
                (scorer_id, limit),
            )
        ]

    def score_table(
        self, scorer_id: int
    ) -> tuple[list[int], list[int], list[str], list[float | None], list[float | None]]:
        """Columns over every response, sorted by sample and position.

        ``sample_id``, ``idx``, ``role``, the ok score (None when missing) and the annotated
        rating: what the map statistics need, in one query.
        """
        with self._lock:
            rows = self.conn.execute(
                "SELECT r.sample_id, r.idx, r.role, sc.value, r.rating FROM responses r"
                " LEFT JOIN scores sc ON sc.response_id = r.id AND sc.scorer_id = ?"
                " AND sc.status = 'ok' ORDER BY r.sample_id, r.idx",
                (scorer_id,),
            ).fetchall()
        if not rows:
            return [], [], [], [], []
        cols = list(zip(*rows, strict=True))
        return list(cols[0]), list(cols[1]), list(cols[2]), list(cols[3]), list(cols[4])

    def scores_fingerprint(self, scorer_id: int) -> str:
        """Changes whenever this scorer's ok scores or the samples change."""
        row = self._query(
            "SELECT count(*), max(created_at), total(value) FROM scores"
            " WHERE scorer_id=? AND status='ok'",
            (scorer_id,),
        )[0]
        n = self._query("SELECT count(*), max(id) FROM samples")[0]
        return json.dumps([*row, *n])

    # -- map statistics -------------------------------------------------------------

    def map_run(self, scorer_id: int) -> dict[str, Any] | None:
        """The stored map of a scorer: its scores fingerprint and thresholds, if computed."""
        rows = self._query(
            "SELECT scores_fingerprint, thresholds, computed_at FROM map_runs WHERE scorer_id=?",
            (scorer_id,),
        )
        if not rows:
            return None
        return {
            "fingerprint": rows[0][0],
            "thresholds": json.loads(rows[0][1]),
            "computed_at": rows[0][2],
        }

    def save_map(
        self,
        scorer_id: int,
        rows: Iterable[
            tuple[
                int,
                int,
                float | None,
                float | None,
                float | None,
                float | None,
                float | None,
                str | None,
            ]
        ],
        *,
        thresholds: dict[str, Any],
        fingerprint: str,
    ) -> None:
        """Replace a scorer's per-sample statistics.

        ``rows``: (sample_id, k, mean, var, margin, tau, cosine, region).
        """
        with self.transaction():
            self.conn.execute("DELETE FROM sample_stats WHERE scorer_id=?", (scorer_id,))
            self.conn.executemany(
                "INSERT INTO sample_stats (scorer_id, sample_id, k, mean, var, margin, tau,"
                " cosine, region) VALUES (?,?,?,?,?,?,?,?,?)",
                ((scorer_id, *r) for r in rows),
            )
            self.conn.execute(
                "INSERT INTO map_runs (scorer_id, scores_fingerprint, thresholds, computed_at)"
                " VALUES (?,?,?,?) ON CONFLICT (scorer_id) DO UPDATE SET"
                " scores_fingerprint=excluded.scores_fingerprint,"
                " thresholds=excluded.thresholds, computed_at=excluded.computed_at",
                (scorer_id, fingerprint, json.dumps(thresholds), _now()),
            )

    def region_counts(self, scorer_id: int) -> dict[str | None, int]:
        """Samples per region of the stored map (None: off the map)."""
        return dict(
            self._query(
                "SELECT region, count(*) FROM sample_stats WHERE scorer_id=? GROUP BY region",
                (scorer_id,),
            )
        )

    # -- decisions ---------------------------------------------------------------------

    def decision(self, sample_id: int) -> DecisionState:
        """The current decision on a sample (all fields None when undecided)."""
        rows = self._query(
            "SELECT action, best_idx, note, reviewer, updated_at FROM sample_state"
            " WHERE sample_id=?",
            (sample_id,),
        )
        if not rows:
            return DecisionState(sample_id, None, None, None, None, None)
        return DecisionState(sample_id, *rows[0])

    def decisions(self) -> dict[int, DecisionState]:
        """Every sample with a current decision or note."""
        return {
            r[0]: DecisionState(*r)
            for r in self._query(
                "SELECT sample_id, action, best_idx, note, reviewer, updated_at FROM sample_state"
                " WHERE action IS NOT NULL OR note IS NOT NULL"
            )
        }

    def decide(
        self,
        sample_id: int,
        action: Action | str,
        reviewer: str,
        *,
        best_idx: int | None = None,
        note: str | None = None,
    ) -> int:
        """Record a decision (flip, drop, keep) or a note on a sample; returns its id."""
        action = Action(action)
        with self.transaction():
            if not self._query("SELECT 1 FROM samples WHERE id=?", (sample_id,)):
                raise StoreError(f"no sample with id {sample_id}")
            prev = self.decision(sample_id)
            cur = self.conn.execute(
                "INSERT INTO decisions (sample_id, action, best_idx, note, reviewer, created_at,"
                " prev_state) VALUES (?,?,?,?,?,?,?)",
                (
                    sample_id,
                    action.value,
                    best_idx,
                    note,
                    reviewer,
                    _now(),
                    json.dumps(_state_dict(prev)),
                ),
            )
            self._apply(sample_id, action.value, best_idx, note, reviewer, prev)
            assert cur.lastrowid is not None
            return cur.lastrowid

    def _apply(
        self,
        sample_id: int,
        action: str,
        best_idx: int | None,
        note: str | None,
        reviewer: str,
        prev: DecisionState,
    ) -> None:
        if action == Action.NOTE.value:
            new = (prev.action, prev.best_idx, note, reviewer)
        else:
            new = (action, best_idx, prev.note, reviewer)
        self._set_state(
            sample_id, {"action": new[0], "best_idx": new[1], "note": new[2], "reviewer": new[3]}
        )

    def _set_state(self, sample_id: int, state: dict[str, Any]) -> None:
        self.conn.execute(
            "INSERT INTO sample_state (sample_id, action, best_idx, note, reviewer, updated_at)"
            " VALUES (?,?,?,?,?,?) ON CONFLICT (sample_id) DO UPDATE SET action=excluded.action,"
            " best_idx=excluded.best_idx, note=excluded.note, reviewer=excluded.reviewer,"
            " updated_at=excluded.updated_at",
            (
                sample_id,
                state.get("action"),
                state.get("best_idx"),
                state.get("note"),
                state.get("reviewer"),
                _now(),
            ),
        )

    def undo(self, reviewer: str) -> int | None:
        """Undo this reviewer's latest standing decision; returns its sample id, or None."""
        with self.transaction():
            rows = self._query(
                "SELECT id, sample_id, prev_state FROM decisions WHERE reviewer=? AND undone=0"
                " AND action IN ('flip','drop','keep','note') ORDER BY id DESC LIMIT 1",
                (reviewer,),
            )
            if not rows:
                return None
            target, sample_id, prev = rows[0]
            self._set_state(sample_id, json.loads(prev))
            self.conn.execute("UPDATE decisions SET undone=1 WHERE id=?", (target,))
            self.conn.execute(
                "INSERT INTO decisions (sample_id, action, reviewer, created_at, target_id)"
                " VALUES (?, 'undo', ?, ?, ?)",
                (sample_id, reviewer, _now(), target),
            )
            return int(sample_id)

    def redo(self, reviewer: str) -> int | None:
        """Redo this reviewer's latest undone decision, unless a new one came after it."""
        with self.transaction():
            last_new = self._query(
                "SELECT coalesce(max(id), 0) FROM decisions WHERE reviewer=?"
                " AND action IN ('flip','drop','keep','note')",
                (reviewer,),
            )[0][0]
            rows = self._query(
                "SELECT u.target_id FROM decisions u JOIN decisions t ON t.id = u.target_id"
                " WHERE u.reviewer=? AND u.action='undo' AND u.id > ? AND t.undone=1"
                " ORDER BY u.id DESC LIMIT 1",
                (reviewer, last_new),
            )
            if not rows:
                return None
            target = rows[0][0]
            sample_id, action, best_idx, note = self._query(
                "SELECT sample_id, action, best_idx, note FROM decisions WHERE id=?", (target,)
            )[0]
            prev = self.decision(sample_id)
            self._apply(sample_id, action, best_idx, note, reviewer, prev)
            self.conn.execute(
                "UPDATE decisions SET undone=0, prev_state=? WHERE id=?",
                (json.dumps(_state_dict(prev)), target),
            )
            self.conn.execute(
                "INSERT INTO decisions (sample_id, action, reviewer, created_at, target_id)"
                " VALUES (?, 'redo', ?, ?, ?)",
                (sample_id, reviewer, _now(), target),
            )
            return int(sample_id)

    def decision_history(self, sample_id: int | None = None) -> list[dict[str, Any]]:
        """Every decision row (undo and redo included), oldest first."""
        where, params = ("sample_id = ?", [sample_id]) if sample_id is not None else (None, [])
        with self._lock:
            return list(self.db["decisions"].rows_where(where, params, order_by="id"))

    def last_position(self, reviewer: str) -> int | None:
        """The sample this reviewer last decided on, to reopen where they stopped."""
        rows = self._query(
            "SELECT sample_id FROM decisions WHERE reviewer=? ORDER BY id DESC LIMIT 1",
            (reviewer,),
        )
        return int(rows[0][0]) if rows else None

    # -- map and diagnosis ---------------------------------------------------------------

    def sample_datasets(self) -> tuple[list[tuple[int, int]], dict[int, str]]:
        """``(sample_id, dataset_id)`` of every sample (unordered), and the dataset names."""
        names = {int(r[0]): r[1] for r in self._query("SELECT id, name FROM datasets")}
        return self._query("SELECT id, dataset_id FROM samples"), names

    def scored_scorer_ids(self) -> list[int]:
        """Ids of the scorers with at least one ok score, oldest first."""
        return [
            r[0]
            for r in self._query(
                "SELECT id FROM scorers s WHERE EXISTS (SELECT 1 FROM scores"
                " WHERE scorer_id = s.id AND status = 'ok') ORDER BY id"
            )
        ]

    def map_rows(self, scorer_id: int, dataset: str | None = None) -> list[tuple[Any, ...]]:
        """The stored map: (sample_id, k, mean, var, margin, tau, cosine, region, dataset)."""
        sql = (
            "SELECT st.sample_id, st.k, st.mean, st.var, st.margin, st.tau, st.cosine,"
            " st.region, d.name FROM sample_stats st JOIN samples s ON s.id = st.sample_id"
            " JOIN datasets d ON d.id = s.dataset_id WHERE st.scorer_id = ?"
        )
        params: list[Any] = [scorer_id]
        if dataset is not None:
            sql += " AND d.name = ?"
            params.append(dataset)
        return self._query(sql + " ORDER BY st.sample_id", params)

    def sample_scores(
        self, scorer_id: int, sample_ids: Sequence[int]
    ) -> dict[int, list[tuple[int, str, str | None, float | None, float | None]]]:
        """Per sample, its responses as (idx, role, model, ok score or None, rating)."""
        out: dict[int, list[tuple[int, str, str | None, float | None, float | None]]] = {
            int(i): [] for i in sample_ids
        }
        if not out:
            return out
        ids = ",".join(str(i) for i in out)
        for sid, idx, role, model, value, rating in self._query(
            "SELECT r.sample_id, r.idx, r.role, r.model, sc.value, r.rating FROM responses r"
            " LEFT JOIN scores sc ON sc.response_id = r.id AND sc.scorer_id = ?"
            f" AND sc.status = 'ok' WHERE r.sample_id IN ({ids}) ORDER BY r.sample_id, r.idx",
            (scorer_id,),
        ):
            out[sid].append((idx, role, model, value, rating))
        return out

    def prompts(self, sample_ids: Sequence[int]) -> dict[int, str]:
        """The prompt text of each of these samples."""
        if not sample_ids:
            return {}
        ids = ",".join(str(int(i)) for i in sample_ids)
        return dict(self._query(f"SELECT id, prompt FROM samples WHERE id IN ({ids})"))

    def paired_scores(
        self, scorer_a: int, scorer_b: int
    ) -> tuple[list[int], list[float | None], list[float | None]]:
        """Columns over every response sorted by sample and position: sample_id, a's, b's score."""
        with self._lock:
            rows = self.conn.execute(
                "SELECT r.sample_id, a.value, b.value FROM responses r"
                " LEFT JOIN scores a ON a.response_id = r.id AND a.scorer_id = ?"
                " AND a.status = 'ok'"
                " LEFT JOIN scores b ON b.response_id = r.id AND b.scorer_id = ?"
                " AND b.status = 'ok' ORDER BY r.sample_id, r.idx",
                (scorer_a, scorer_b),
            ).fetchall()
        if not rows:
            return [], [], []
        cols = list(zip(*rows, strict=True))
        return list(cols[0]), list(cols[1]), list(cols[2])

    def map_columns(self, scorer_id: int) -> list[tuple[int, int, float | None, float | None]]:
        """Rows for the map, one per response: (sample_id, role code, ok score, rating).

        Role codes: 0 none, 1 chosen, 2 rejected. Unordered (the map sorts): an ORDER BY
        here costs more than a sort in numpy on millions of rows.
        """
        return self._query(
            "SELECT r.sample_id, CASE r.role WHEN 'chosen' THEN 1 WHEN 'rejected' THEN 2"
            " ELSE 0 END, sc.value, r.rating FROM responses r"
            " LEFT JOIN scores sc ON sc.response_id = r.id AND sc.scorer_id = ?"
            " AND sc.status = 'ok'",
            (scorer_id,),
        )

    def save_map_bulk(
        self,
        scorer_id: int,
        rows: Iterable[tuple[Any, ...]],
        *,
        thresholds: dict[str, Any],
        fingerprint: str,
    ) -> None:
        """`save_map` for large maps: indexes rebuilt once (a sort), not updated per row."""
        cache = self._query("PRAGMA cache_size")[0][0]
        with self._lock:
            # a bigger page cache for the duration: index builds spill less to disk
            self.conn.execute("PRAGMA cache_size=-131072")
            try:
                with self.transaction():
                    indexes = self._query(
                        "SELECT name, sql FROM sqlite_master WHERE type = 'index'"
                        " AND tbl_name = 'sample_stats' AND sql IS NOT NULL"
                    )
                    for name, _sql in indexes:
                        self.conn.execute(f'DROP INDEX "{name}"')
                    self.save_map(scorer_id, rows, thresholds=thresholds, fingerprint=fingerprint)
                    for _name, sql in indexes:
                        self.conn.execute(sql)
            finally:
                self.conn.execute(f"PRAGMA cache_size={int(cache)}")

    def region_breakdown(
        self, scorer_id: int, by: str, dataset: str | None = None
    ) -> list[tuple[str | None, str | None, int]]:
        """(region, label, count) of the stored map: samples per source, or responses per model."""
        if by == "source":
            sql = (
                "SELECT st.region, s.source, count(*) FROM sample_stats st"
                " JOIN samples s ON s.id = st.sample_id"
            )
        elif by == "model":
            sql = (
                "SELECT st.region, r.model, count(*) FROM sample_stats st"
                " JOIN samples s ON s.id = st.sample_id JOIN responses r ON r.sample_id = s.id"
            )
        else:
            raise ValueError(f"cannot break regions down by {by!r}")
        params: list[Any] = [scorer_id]
        sql += " WHERE st.scorer_id = ?"
        if dataset is not None:
            sql += " AND s.dataset_id = (SELECT id FROM datasets WHERE name = ?)"
            params.append(dataset)
        return self._query(sql + " GROUP BY 1, 2", params)

    # -- scoring ---------------------------------------------------------------------

    def reference_answers(self, generator_hash: str, sample_ids: Sequence[int]) -> dict[int, str]:
        """Stored ok reference answers of one generator configuration, by sample id."""
        out: dict[int, str] = {}
        ids = [int(i) for i in sample_ids]
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ",".join("?" * len(chunk))
            for sample_id, text in self._query(
                "SELECT sample_id, text FROM reference_answers WHERE generator_hash=?"
                f" AND status='ok' AND sample_id IN ({marks})",
                (generator_hash, *chunk),
            ):
                out[sample_id] = text
        return out

    def save_reference_answer(
        self,
        generator_hash: str,
        sample_id: int,
        *,
        text: str | None,
        status: str,
        raw: str | None = None,
        error: str | None = None,
        prompt_tokens: int = 0,
        completion_tokens: int = 0,
        cost: float = 0.0,
    ) -> bool:
        """Record a generated reference answer; an ok one is never overwritten. True if written."""
        with self.transaction():
            before = self.conn.total_changes
            self.conn.execute(
                "INSERT INTO reference_answers (sample_id, generator_hash, text, status, raw,"
                " error, prompt_tokens, completion_tokens, cost, created_at)"
                " VALUES (?,?,?,?,?,?,?,?,?,?)"
                " ON CONFLICT (generator_hash, sample_id) DO UPDATE SET text=excluded.text,"
                " status=excluded.status, raw=excluded.raw, error=excluded.error,"
                " prompt_tokens=reference_answers.prompt_tokens + excluded.prompt_tokens,"
                " completion_tokens=reference_answers.completion_tokens"
                " + excluded.completion_tokens,"
                " cost=reference_answers.cost + excluded.cost, created_at=excluded.created_at"
                " WHERE reference_answers.status != 'ok'",
                (
                    sample_id,
                    generator_hash,
                    text,
                    status,
                    raw,
                    error,
                    prompt_tokens,
                    completion_tokens,
                    cost,
                    _now(),
                ),
            )
            return self.conn.total_changes > before

    def reference_cost(self, generator_hash: str) -> float:
        """Dollars spent on this generator's reference answers."""
        return float(
            self._query(
                "SELECT total(cost) FROM reference_answers WHERE generator_hash=?",
                (generator_hash,),
            )[0][0]
        )

    def sample_conversations(self, sample_ids: Sequence[int]) -> dict[int, list[dict[str, str]]]:
        """The conversation of each sample, by id."""
        out: dict[int, list[dict[str, str]]] = {}
        ids = [int(i) for i in sample_ids]
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ",".join("?" * len(chunk))
            for sample_id, conversation, prompt in self._query(
                f"SELECT id, conversation, prompt FROM samples WHERE id IN ({marks})", chunk
            ):
                out[sample_id] = decode_conversation(conversation, prompt)
        return out

    def scorer_cost(self, scorer_id: int) -> float:
        """Dollars recorded on this scorer's scores."""
        return float(
            self._query("SELECT total(cost) FROM scores WHERE scorer_id=?", (scorer_id,))[0][0]
        )

    def add_batch(
        self,
        batch_id: str,
        scorer_id: int,
        *,
        status: str,
        input_file_id: str | None,
        request_count: int,
        meta: dict[str, Any],
    ) -> None:
        """Remember a submitted Batch API job so a later run resumes it instead of paying twice."""
        now = _now()
        with self.transaction():
            self.conn.execute(
                "INSERT INTO batches (id, scorer_id, status, input_file_id, request_count, meta,"
                " created_at, updated_at) VALUES (?,?,?,?,?,?,?,?)",
                (
                    batch_id,
                    scorer_id,
                    status,
                    input_file_id,
                    request_count,
                    json.dumps(meta),
                    now,
                    now,
                ),
            )

    def update_batch(
        self,
        batch_id: str,
        *,
        status: str,
        output_file_id: str | None = None,
        error_file_id: str | None = None,
    ) -> None:
        """Record a batch's new status (and its result files once known)."""
        with self.transaction():
            self.conn.execute(
                "UPDATE batches SET status=?, output_file_id=coalesce(?, output_file_id),"
                " error_file_id=coalesce(?, error_file_id), updated_at=? WHERE id=?",
                (status, output_file_id, error_file_id, _now(), batch_id),
            )

    def open_batches(self, scorer_id: int) -> list[dict[str, Any]]:
        """This scorer's batches whose results are not stored yet, oldest first."""
        rows = self._query(
            "SELECT id, status, input_file_id, output_file_id, error_file_id, request_count, meta"
            " FROM batches WHERE scorer_id=? AND status != 'stored' ORDER BY created_at, id",
            (scorer_id,),
        )
        keys = ("id", "status", "input_file_id", "output_file_id", "error_file_id")
        return [
            {**dict(zip(keys, r[:5], strict=True)), "request_count": r[5], "meta": json.loads(r[6])}
            for r in rows
        ]

    # -- export ----------------------------------------------------------------------

    def export_count(
        self,
        *,
        dataset_id: int | None = None,
        scorer_id: int | None = None,
        regions: Sequence[str] | None = None,
    ) -> int:
        """How many samples `export_samples` would yield with the same filters."""
        join, where, params = _export_filter(dataset_id, scorer_id, regions)
        return int(self._query(f"SELECT count(*) FROM samples s{join}{where}", params)[0][0])

    def export_stripes(
        self,
        *,
        dataset_id: int | None = None,
        scorer_id: int | None = None,
        regions: Sequence[str] | None = None,
        size: int,
    ) -> list[int]:
        """The upper bounds of stripes of ``size`` samples in `export_samples`' order (the
        same filters), the last one's bound its last sample: the work exporters share."""
        join, where, params = _export_filter(dataset_id, scorer_id, regions)
        rows = self._query(
            "SELECT id, n, total FROM (SELECT s.id, row_number() OVER (ORDER BY s.id) AS n,"
            f" count(*) OVER () AS total FROM samples s{join}{where})"
            " WHERE n % ? = 0 OR n = total ORDER BY id",
            [*params, size],
        )
        return [int(r[0]) for r in rows]

    def mapped_sample_ids(self, scorer_id: int, *, dataset_id: int | None = None) -> list[int]:
        """Ids of the samples placed in a region of this scorer's stored map, ascending."""
        sql = "SELECT st.sample_id FROM sample_stats st"
        params: list[Any] = [scorer_id]
        if dataset_id is not None:
            sql += " JOIN samples s ON s.id = st.sample_id AND s.dataset_id = ?"
            params.insert(0, dataset_id)
        sql += " WHERE st.scorer_id = ? AND st.region IS NOT NULL ORDER BY st.sample_id"
        return [r[0] for r in self._query(sql, params)]

    def export_samples(
        self,
        *,
        dataset_id: int | None = None,
        scorer_id: int | None = None,
        regions: Sequence[str] | None = None,
        with_record: bool = False,
        score_of: int | None = None,
        quoted: bool = False,
        chunk: int = 2000,
        after: int = 0,
        upto: int | None = None,
        ids: Sequence[int] | None = None,
    ) -> Iterator[list[ExportSample]]:
        """Samples with their responses in id order, ``chunk`` at a time (memory stays flat).

        Only ids above ``after`` and, with ``upto``, up to it (see `export_stripes`); with
        ``ids``, only those (at most ``chunk`` of them).

        ``scorer_id`` adds each sample's region in that scorer's stored map; ``regions``
        keeps only samples in those regions; ``score_of`` adds that scorer's ok score to
        every response; ``with_record`` adds the source record verbatim, as UTF-8 bytes.
        ``quoted`` gives the prompt and the response texts as JSON string literals and the
        conversation as JSON, all UTF-8 bytes quoted by SQLite, for a writer that pastes
        them into JSON lines without decoding and encoding every text in Python.
        """
        join, where, params = _export_filter(dataset_id, scorer_id, regions)
        region_col = "st.region" if scorer_id is not None else "NULL"
        record_col = "CAST(s.record AS BLOB)" if with_record else "NULL"
        conv_col, prompt_col, text_col = "s.conversation", "s.prompt", "r.text"
        if quoted:
            conv_col = "CAST(s.conversation AS BLOB)"
            prompt_col = "CAST(json_quote(s.prompt) AS BLOB)"
            text_col = "CAST(json_quote(r.text) AS BLOB)"
        bound, bounds = ("", []) if upto is None else (" AND s.id <= ?", [upto])
        if ids is not None:
            if len(ids) > chunk:
                raise StoreError(f"{len(ids)} ids asked for, more than a chunk ({chunk})")
            bound, bounds = f" AND s.id IN ({','.join('?' * len(ids))})", list(ids)
        sql = (
            f"SELECT s.id, s.dataset_id, s.kind, {conv_col}, {prompt_col}, {record_col},"
            f" {region_col} FROM samples s{join}{where}"
            f"{' AND' if where else ' WHERE'} s.id > ?{bound} ORDER BY s.id LIMIT ?"
        )
        if score_of is None:
            rsql = f"SELECT r.sample_id, r.idx, r.role, {text_col}, r.rating, NULL"
            rsql += " FROM responses r"
            rparams: list[Any] = []
        else:
            rsql = f"SELECT r.sample_id, r.idx, r.role, {text_col}, r.rating, sc.value"
            rsql += (
                " FROM responses r LEFT JOIN scores sc ON sc.response_id = r.id"
                " AND sc.scorer_id = ? AND sc.status = 'ok'"
            )
            rparams = [score_of]
        last = after
        none: list[tuple[Any, ...]] = []
        new = tuple.__new__  # skips NamedTuple's Python-level __new__: a million samples
        while True:
            rows = self._query(sql, [*params, last, *bounds, chunk])
            if not rows:
                return
            lo, hi = rows[0][0], rows[-1][0]
            # a dense id range reads fastest as BETWEEN; a sparse selection names its ids
            if hi - lo + 1 <= 2 * len(rows):
                cond, cparams = " WHERE r.sample_id BETWEEN ? AND ?", [lo, hi]
            else:
                cond = f" WHERE r.sample_id IN ({','.join('?' * len(rows))})"
                cparams = [r[0] for r in rows]
            found = self._query(f"{rsql}{cond} ORDER BY r.sample_id, r.idx", rparams + cparams)
            responses = {k: list(g) for k, g in itertools.groupby(found, key=itemgetter(0))}
            yield [new(ExportSample, (*r, responses.get(r[0], none))) for r in rows]
            last = hi

    def export_pair_lines(
        self,
        pieces: Sequence[str],
        *,
        dataset_id: int | None = None,
        scorer_id: int | None = None,
        regions: Sequence[str] | None = None,
        chunk: int = 2000,
        after: int = 0,
        upto: int | None = None,
    ) -> Iterator[list[tuple[Any, ...]]]:
        """The samples of `export_samples` (the same filters and bounds) as rows of
        (id, dataset_id, region, head, chosen rating, rejected rating), where ``head`` is
        the start of the sample's JSON line when it is a plain labelled pair, else None.

        A plain pair is a one-turn prompt with exactly a chosen (idx 0) and a rejected
        (idx 1) response, as most preference data is. Its ``head`` is pieces[0] + prompt +
        pieces[1] + chosen + pieces[2] + rejected + pieces[3], the texts quoted as JSON
        strings, in UTF-8 bytes; the caller appends the ratings. One row a sample, the
        responses found by rowid next to the first one: for a million pairs this is about
        half the work of reading samples and responses apart and matching them in Python
        (a sample whose responses are not next to each other is simply not taken for one).
        Any other sample (head None) is read with `export_samples` ``ids``.
        """
        join, where, params = _export_filter(dataset_id, scorer_id, regions)
        region_col = "st.region" if scorer_id is not None else "NULL"
        bound, bounds = ("", []) if upto is None else (" AND s.id <= ?", [upto])
        sql = (
            f"SELECT s.id, s.dataset_id, {region_col}, CASE WHEN s.kind = 'pair'"
            # '' is one user turn; so is that turn as JSON, as databases written before
            # one-turn prompts were stored once hold it
            " AND (s.conversation = '' OR s.conversation"
            ' = \'[{"role":"user","content":\' || json_quote(s.prompt) || \'}]\')'
            " AND c.role = 'chosen' AND r.sample_id = s.id"
            " AND r.idx = 1 AND r.role = 'rejected' AND x.id IS NULL"
            " THEN CAST(? || json_quote(s.prompt) || ? || json_quote(c.text) || ?"
            " || json_quote(r.text) || ? AS BLOB) END, c.rating, r.rating"
            f" FROM samples s{join}"
            " LEFT JOIN responses c ON c.sample_id = s.id AND c.idx = 0"
            " LEFT JOIN responses r ON r.id = c.id + 1"
            " LEFT JOIN responses x ON x.sample_id = s.id AND x.idx = 2"
            f"{where}{' AND' if where else ' WHERE'} s.id > ?{bound} ORDER BY s.id LIMIT ?"
        )
        last = after
        while True:
            rows = self._query(sql, [*pieces, *params, last, *bounds, chunk])
            if not rows:
                return
            yield rows
            last = rows[-1][0]

    # -- review ------------------------------------------------------------------------

    def _queue_sql(
        self, queue: Any, *, cursor: tuple[float, int] | None, backward: bool, inclusive: bool
    ) -> tuple[str, list[Any], bool]:
        from store.review import SORTS, STATUSES, SUSPECT

        if queue.sort not in SORTS:
            raise StoreError(f"unknown sort {queue.sort!r}; choose one of {', '.join(SORTS)}")
        if queue.status not in STATUSES:
            raise StoreError(
                f"unknown status {queue.status!r}; choose one of {', '.join(STATUSES)}"
            )
        expr, desc, _ = SORTS[queue.sort]
        where = ["st.scorer_id = ?", f"{expr} IS NOT NULL"]
        params: list[Any] = [queue.scorer_id]
        if queue.region is None:
            # the same expression as the partial index stats_suspects, so it is used
            where.append(f"{SUSPECT} < 0")
        else:
            where.append("st.region = ?")
            params.append(queue.region)
        if STATUSES[queue.status]:
            where.append(STATUSES[queue.status])
        if queue.dataset_id is not None:
            where.append("s.dataset_id = ?")
            params.append(queue.dataset_id)
        if queue.search:
            escaped = queue.search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            where.append("s.prompt LIKE ? ESCAPE '\\'")
            params.append(f"%{escaped}%")
        descending = desc != backward
        if cursor is not None:
            op = ("<" if descending else ">") + ("=" if inclusive else "")
            # the plain bound lets SQLite seek an expression index; the row value alone does not
            where.append(f"{expr} {op[0]}= ? AND ({expr}, st.sample_id) {op} (?, ?)")
            params.extend([cursor[0], *cursor])
        order = "DESC" if descending else "ASC"
        sql = (
            f"SELECT st.sample_id, {expr}, d.name, s.kind, st.region, st.mean, st.var,"
            " st.margin, st.tau, ss.action, ss.best_idx, ss.note, substr(s.prompt, 1, 200)"
            " FROM sample_stats st JOIN samples s ON s.id = st.sample_id"
            " JOIN datasets d ON d.id = s.dataset_id"
            " LEFT JOIN sample_state ss ON ss.sample_id = st.sample_id"
            f" WHERE {' AND '.join(where)}"
            f" ORDER BY {expr} {order}, st.sample_id {order}"
        )
        return sql, params, descending

    def queue_page(
        self,
        queue: Any,
        *,
        after: tuple[float, int] | None = None,
        limit: int = 100,
        backward: bool = False,
        inclusive: bool = False,
    ) -> list[Any]:
        """One page of a review queue (`store.review.Queue`), by keyset from ``after``.

        ``after`` is the (key, sample_id) of the row before the page (or after it when
        ``backward``); rows come back in queue order either way.
        """
        from store.review import QueueRow

        sql, params, _ = self._queue_sql(
            queue, cursor=after, backward=backward, inclusive=inclusive
        )
        rows = [QueueRow(*r) for r in self._query(sql + " LIMIT ?", [*params, limit])]
        return rows[::-1] if backward else rows

    def queue_count(self, queue: Any) -> int:
        """How many samples a review queue holds."""
        sql, params, _ = self._queue_sql(queue, cursor=None, backward=False, inclusive=False)
        return int(self._query(f"SELECT count(*) FROM ({sql})", params)[0][0])

    def queue_row(self, queue: Any, sample_id: int) -> Any | None:
        """A sample's row in a queue's order (whether or not it passes the filters)."""
        from store.review import SORTS, QueueRow

        expr = SORTS[queue.sort][0]
        rows = self._query(
            f"SELECT st.sample_id, {expr}, d.name, s.kind, st.region, st.mean, st.var,"
            " st.margin, st.tau, ss.action, ss.best_idx, ss.note, substr(s.prompt, 1, 200)"
            " FROM sample_stats st JOIN samples s ON s.id = st.sample_id"
            " JOIN datasets d ON d.id = s.dataset_id"
            " LEFT JOIN sample_state ss ON ss.sample_id = st.sample_id"
            f" WHERE st.scorer_id = ? AND st.sample_id = ? AND {expr} IS NOT NULL",
            (queue.scorer_id, sample_id),
        )
        return QueueRow(*rows[0]) if rows else None

    def region_table(self, scorer_id: int) -> list[Any]:
        """Per region (and the suspects): samples, reviewed, flipped, dropped, kept."""
        from store.review import SUSPECT, RegionRow

        counts = self.region_counts(scorer_id)
        suspects = self._query(
            f"SELECT count(*) FROM sample_stats st WHERE st.scorer_id = ? AND {SUSPECT} < 0",
            (scorer_id,),
        )[0][0]
        decided: dict[str, dict[str, int]] = {}
        for region, action, n in self._query(
            "SELECT st.region, ss.action, count(*) FROM sample_state ss"
            " JOIN sample_stats st ON st.scorer_id = ? AND st.sample_id = ss.sample_id"
            " WHERE ss.action IS NOT NULL GROUP BY st.region, ss.action",
            (scorer_id,),
        ):
            decided.setdefault(region, {})[action] = n
        for action, n in self._query(
            "SELECT ss.action, count(*) FROM sample_state ss"
            " JOIN sample_stats st ON st.scorer_id = ? AND st.sample_id = ss.sample_id"
            f" WHERE ss.action IS NOT NULL AND {SUSPECT} < 0 GROUP BY ss.action",
            (scorer_id,),
        ):
            decided.setdefault("Suspects", {})[action] = n
        out = []
        for region, n in [
            *[(r, counts.get(r, 0)) for r in ("HighAvg", "LowAvg", "HighVar")],
            ("Suspects", suspects),
        ]:
            d = decided.get(region, {})
            out.append(
                RegionRow(
                    region,
                    int(n),
                    sum(d.values()),
                    d.get("flip", 0),
                    d.get("drop", 0),
                    d.get("keep", 0),
                )
            )
        return out

    def map_points(self, scorer_id: int, limit: int = 3000) -> list[tuple[float, float, str]]:
        """(var, mean, region) of at most ``limit`` samples spread evenly over the map.

        Cached per map (keyed by its scores fingerprint), since picking them from a large
        map costs a second and the map screen wants them at once.
        """
        run = self._query(
            "SELECT m.scores_fingerprint, p.scores_fingerprint, p.points FROM map_runs m"
            " LEFT JOIN map_points p ON p.scorer_id = m.scorer_id WHERE m.scorer_id = ?",
            (scorer_id,),
        )
        if run and run[0][0] == run[0][1]:
            return [tuple(p) for p in json.loads(run[0][2])]
        lo = self._query(
            "SELECT min(sample_id) FROM sample_stats WHERE scorer_id = ?", (scorer_id,)
        )
        hi = self._query(
            "SELECT max(sample_id) FROM sample_stats WHERE scorer_id = ?", (scorer_id,)
        )
        if lo[0][0] is None:
            return []
        first, last = int(lo[0][0]), int(hi[0][0])
        step = max(1, (last - first + 1) // limit)
        ids = json.dumps(list(range(first, last + 1, step)))
        points = [
            (float(r[0]), float(r[1]), str(r[2]))
            for r in self._query(
                "SELECT var, mean, region FROM sample_stats WHERE scorer_id = ?"
                " AND sample_id IN (SELECT value FROM json_each(?)) AND region IS NOT NULL",
                (scorer_id, ids),
            )
        ]
        if run:
            with self._lock:
                self.conn.execute(
                    "INSERT INTO map_points (scorer_id, scores_fingerprint, points) VALUES (?,?,?)"
                    " ON CONFLICT (scorer_id) DO UPDATE SET"
                    " scores_fingerprint=excluded.scores_fingerprint, points=excluded.points",
                    (scorer_id, run[0][0], json.dumps(points)),
                )
        return points

    def response_scores(self, scorer_id: int, sample_id: int) -> dict[int, dict[str, Any]]:
        """Response position -> this scorer's score (value, status, rationale, error)."""
        return {
            r[0]: {"value": r[1], "status": r[2], "rationale": r[3], "error": r[4]}
            for r in self._query(
                "SELECT r.idx, sc.value, sc.status, sc.rationale, sc.error FROM responses r"
                " JOIN scores sc ON sc.response_id = r.id AND sc.scorer_id = ?"
                " WHERE r.sample_id = ?",
                (scorer_id, sample_id),
            )
        }

    def sample_stat(self, scorer_id: int, sample_id: int) -> dict[str, Any] | None:
        """A sample's map statistics for one scorer, if it has them."""
        rows = self._query(
            "SELECT k, mean, var, margin, tau, cosine, region FROM sample_stats"
            " WHERE scorer_id = ? AND sample_id = ?",
            (scorer_id, sample_id),
        )
        if not rows:
            return None
        return dict(
            zip(("k", "mean", "var", "margin", "tau", "cosine", "region"), rows[0], strict=True)
        )

    def data_version(self) -> int:
        """Changes whenever another connection (another process) commits to the database."""
        return int(self._query("PRAGMA data_version")[0][0])

    def score_progress(self) -> dict[int, int]:
        """Scorer id -> responses with an ok score."""
        return dict(
            self._query(
                "SELECT scorer_id, count(*) FROM scores WHERE status='ok' GROUP BY scorer_id"
            )
        )

    def newest_scored_scorer(self) -> ScorerRow | None:
        """The newest scorer with at least one ok score (one index probe per scorer)."""
        for sc in reversed(self.scorers()):
            if self._query(
                "SELECT 1 FROM scores WHERE scorer_id = ? AND status = 'ok' LIMIT 1", (sc.id,)
            ):
                return sc
        return None

    def count_responses(self) -> int:
        """How many responses the database holds."""
        return int(self._query("SELECT count(*) FROM responses")[0][0])

    def save_review_cursor(self, reviewer: str, queue: dict[str, Any], sample_id: int) -> None:
        """Remember the queue and sample a reviewer is on, to reopen there."""
        with self._lock:
            self.conn.execute(
                "INSERT INTO review_cursor (reviewer, queue, sample_id, updated_at)"
                " VALUES (?,?,?,?) ON CONFLICT (reviewer) DO UPDATE SET queue=excluded.queue,"
                " sample_id=excluded.sample_id, updated_at=excluded.updated_at",
                (reviewer, json.dumps(queue), sample_id, _now()),
            )

    def review_cursor(self, reviewer: str) -> tuple[dict[str, Any], int] | None:
        """The queue and sample a reviewer was last on, if any."""
        rows = self._query(
            "SELECT queue, sample_id FROM review_cursor WHERE reviewer = ?", (reviewer,)
        )
        return (json.loads(rows[0][0]), int(rows[0][1])) if rows else None

    def add_synthetic(self, n_samples: int, *, name: str = "synthetic") -> int:
        """Bulk-generate a scored dataset of labelled pairs in SQL; returns the scorer id.

        For benchmarks and tests of large databases: a million pairs take seconds.
        Scores are a fixed pseudo-random function of the response id.
        """
        scorer = self.scorer(name, "synthetic", {"kind": "synthetic", "name": name})
        with self.transaction():
            ds = self.add_dataset(
                name=name,
                source_path="(generated)",
                format="synthetic",
                content_hash=f"synthetic-{name}-{n_samples}-{_now()}",
            )
            base = self._query("SELECT coalesce(max(id), 0) FROM samples")[0][0]
            self.conn.execute(
                "WITH RECURSIVE seq(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM seq WHERE i < ?)"
                " INSERT INTO samples (id, dataset_id, row, kind, conversation, prompt, source,"
                " record) SELECT ? + i, ?, i - 1, 'pair', ?,"
                " 'Synthetic prompt ' || i, 'synthetic', '{}' FROM seq",
                (n_samples, base, ds, ONE_USER_TURN),
            )
            self.conn.execute(
                "INSERT INTO responses (sample_id, idx, role, model, text)"
                " SELECT s.id, p.idx, p.role, 'synthetic-model',"
                " 'Synthetic ' || p.role || ' response to prompt ' || (s.id - ?)"
                " FROM samples s, (SELECT 0 AS idx, 'chosen' AS role"
                " UNION ALL SELECT 1, 'rejected') p WHERE s.dataset_id = ?"
                " ORDER BY s.id, p.idx",
                (base, ds),
            )
            self.conn.execute(
                "INSERT INTO scores (response_id, scorer_id, value, status, created_at)"
                " SELECT r.id, ?, ((r.id * 2654435761) % 1000003) / 1000003.0, 'ok', ?"
                " FROM responses r JOIN samples s ON s.id = r.sample_id WHERE s.dataset_id = ?",
                (scorer.id, _now(), ds),
            )
            self.finish_dataset(
                ds, records=n_samples, samples=n_samples, responses=2 * n_samples, rejects=0
            )
        return scorer.id


def _state_dict(state: DecisionState) -> dict[str, Any]:
    return {
        "action": state.action,
        "best_idx": state.best_idx,
        "note": state.note,
        "reviewer": state.reviewer,
    }


class BulkWriter:
    """Inserts encoded samples on a thread of its own; see `Store.bulk_writer`."""

    def __init__(self, store: Store, dataset_id: int) -> None:
        import queue

        self._store = store
        self._dataset_id = dataset_id
        self._queue: queue.Queue[
            tuple[Sequence[EncodedSample], Sequence[str | bytes]] | bytes | None
        ] = queue.Queue(maxsize=3)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="bulk-writer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (batch := self._queue.get()) is not None:
            if self._error is None:
                try:
                    if isinstance(batch, bytes):
                        self._store._merge_image(self._dataset_id, batch)
                    else:
                        self._store._insert_encoded(self._dataset_id, *batch)
                except BaseException as e:  # handed to the caller's thread
                    self._error = e

    def put(self, batch: Sequence[EncodedSample], records: Sequence[str | bytes]) -> None:
        """Queue a batch of samples and their records; blocks while three wait, so memory
        stays flat."""
        if self._error is not None:
            raise self._error
        if batch:
            self._queue.put((batch, records))

    def put_image(self, image: bytes) -> None:
        """Queue a `sample_image`; blocks while three wait."""
        if self._error is not None:
            raise self._error
        self._queue.put(image)

    def close(self) -> None:
        """Wait until every queued batch is written; raise the writer's error, if any."""
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()
        if self._error is not None:
            raise self._error

    def __enter__(self) -> BulkWriter:
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        if exc_type is None:
            self.close()
            return
        # the caller is failing: stop writing before it rolls back on this connection
        self._error = self._error or RuntimeError("ingest stopped")
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()


# -- export ---------------------------------------------------------------------------


class ExportSample(typing.NamedTuple):
    """A sample as the export reads it.

    ``responses`` hold (sample_id, idx, role, text, rating, score) in idx order.
    """

    id: int
    dataset_id: int
    kind: str
    conversation: Any
    """The conversation as JSON text (str; UTF-8 bytes when quoted); empty
    (`ONE_USER_TURN`) when it is one user turn, whose text is ``prompt``."""
    prompt: Any
    """The prompt text (str; a JSON string literal in UTF-8 bytes when quoted)."""
    record: bytes | None
    region: str | None
    responses: list[tuple[Any, ...]]


def _export_filter(
    dataset_id: int | None, scorer_id: int | None, regions: Sequence[str] | None
) -> tuple[str, str, list[Any]]:
    join, conds, params = "", [], list[Any]()
    if scorer_id is not None:
        join = " LEFT JOIN sample_stats st ON st.sample_id = s.id AND st.scorer_id = ?"
        params.append(scorer_id)
    if dataset_id is not None:
        conds.append("s.dataset_id = ?")
        params.append(dataset_id)
    if regions is not None:
        if scorer_id is None:
            raise StoreError("a region filter needs a scorer's map")
        conds.append(f"st.region IN ({','.join('?' * len(regions))})")
        params.extend(regions)
    return join, (" WHERE " + " AND ".join(conds)) if conds else "", params
