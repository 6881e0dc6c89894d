"""`Store`: opens and migrates the database and offers verbs in the domain's words."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlite_utils

from auditor.model import Action, SampleIn, ScoreIn, prompt_text
from store.migrations import migrate

DECIDING_ACTIONS = (Action.FLIP.value, Action.DROP.value, Action.KEEP.value)


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

    def __init__(self, path: str | os.PathLike[str], *, timeout: float = 30.0) -> None:
        self.path = Path(path)
        if self.path.parent and not self.path.parent.exists():
            raise StoreError(f"{self.path}: the folder {self.path.parent} does not exist")
        conn = sqlite3.connect(
            str(self.path), timeout=timeout, check_same_thread=False, isolation_level=None
        )
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute(f"PRAGMA busy_timeout={int(timeout * 1000)}")
        self.conn = conn
        self.db = sqlite_utils.Database(conn)
        self._lock = threading.RLock()
        self._depth = 0
        with self._lock:
            migrate(self.db)

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
                self.conn.execute("BEGIN IMMEDIATE")
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

    # -- datasets and ingest -------------------------------------------------------------

    def dataset_by_hash(self, content_hash: str) -> dict[str, Any] | None:
        """The dataset ingested from a file with this content hash, if any."""
        rows = list(self.db["datasets"].rows_where("content_hash = ?", [content_hash]))
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
        if not samples:
            return 0
        dumps = json.dumps
        with self._lock:
            cur = self.conn.cursor()
            first = cur.execute("SELECT coalesce(max(id), 0) + 1 FROM samples").fetchone()[0]
            cur.executemany(
                "INSERT INTO samples (id, dataset_id, row, kind, conversation, prompt, source,"
                " reference, flags, record) VALUES (?,?,?,?,?,?,?,?,?,?)",
                [
                    (
                        first + i,
                        dataset_id,
                        s.row,
                        s.kind,
                        dumps(s.conversation, ensure_ascii=False),
                        prompt_text(s.conversation),
                        s.source,
                        s.reference,
                        ",".join(s.flags) if s.flags else None,
                        s.record,
                    )
                    for i, s in enumerate(samples)
                ],
            )
            rows = [
                (
                    first + i,
                    j,
                    r.role.value,
                    r.model,
                    r.text,
                    r.rating,
                    dumps(r.ratings, ensure_ascii=False) if r.ratings else None,
                )
                for i, s in enumerate(samples)
                for j, r in enumerate(s.responses)
            ]
            cur.executemany(
                "INSERT INTO responses (sample_id, idx, role, model, text, rating, ratings)"
                " VALUES (?,?,?,?,?,?,?)",
                rows,
            )
        return len(rows)

    def datasets(self) -> list[dict[str, Any]]:
        """Every dataset, oldest first."""
        return list(self.db["datasets"].rows_where(order_by="id"))

    def dataset_named(self, name: str) -> dict[str, Any] | None:
        """The dataset with this name, if any."""
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
            cost = self._query("SELECT total(cost) FROM scores WHERE scorer_id=?", (s.id,))[0][0]
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
        rows = list(self.db["samples"].rows_where("id = ?", [sample_id]))
        if not rows:
            return None
        s = rows[0]
        s["conversation"] = json.loads(s["conversation"])
        s["flags"] = s["flags"].split(",") if s["flags"] else []
        s["responses"] = [
            {**r, "ratings": json.loads(r["ratings"]) if r["ratings"] else None}
            for r in self.db["responses"].rows_where("sample_id = ?", [sample_id], order_by="idx")
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
        matches = [
            s for s in scorers if s.name == ref or s.config_hash.startswith(ref) or str(s.id) == ref
        ]
        if not matches:
            names = ", ".join(f"{s.name} ({s.config_hash})" for s in scorers)
            raise StoreError(f"no scorer named {ref!r}; this database has: {names}")
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
            "SELECT r.id, r.sample_id, r.idx, r.role, r.text, s.conversation, s.reference"
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
            PendingResponse(r[0], r[1], r[2], r[3], r[4], json.loads(r[5]), r[6])
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
        return list(self.db["decisions"].rows_where(where, params, order_by="id"))

    def last_position(self, reviewer: str) -> int | None:
        """The sample this reviewer last decided on, to reopen where they stopped."""
        rows = self._query(
            "SELECT sample_id FROM decisions WHERE reviewer=? ORDER BY id DESC LIMIT 1",
            (reviewer,),
        )
        return int(rows[0][0]) if rows else None

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

    def sample_scores(self, scorer_id: int, sample_id: int) -> dict[int, dict[str, Any]]:
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
                " record) SELECT ? + i, ?, i - 1, 'pair',"
                " json_array(json_object('role', 'user', 'content', 'Synthetic prompt ' || i)),"
                " 'Synthetic prompt ' || i, 'synthetic', '{}' FROM seq",
                (n_samples, base, ds),
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
