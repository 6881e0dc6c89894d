"""Schema migrations, applied in order on open and recorded in ``_migrations``."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime

_M001_INITIAL = """
        CREATE TABLE datasets (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            source_path TEXT NOT NULL,
            format TEXT NOT NULL,
            content_hash TEXT NOT NULL UNIQUE,
            ingested_at TEXT NOT NULL,
            options TEXT,
            n_records INTEGER NOT NULL DEFAULT 0,
            n_samples INTEGER NOT NULL DEFAULT 0,
            n_responses INTEGER NOT NULL DEFAULT 0,
            n_rejects INTEGER NOT NULL DEFAULT 0
        );
        CREATE TABLE samples (
            id INTEGER PRIMARY KEY,
            dataset_id INTEGER NOT NULL REFERENCES datasets(id) ON DELETE CASCADE,
            row INTEGER NOT NULL,
            kind TEXT NOT NULL,
            conversation TEXT NOT NULL,
            prompt TEXT NOT NULL,
            source TEXT,
            reference TEXT,
            flags TEXT,
            record TEXT NOT NULL,
            UNIQUE (dataset_id, row)
        );
        CREATE TABLE responses (
            id INTEGER PRIMARY KEY,
            sample_id INTEGER NOT NULL REFERENCES samples(id) ON DELETE CASCADE,
            idx INTEGER NOT NULL,
            role TEXT NOT NULL,
            model TEXT,
            text TEXT NOT NULL,
            rating REAL,
            ratings TEXT,
            UNIQUE (sample_id, idx)
        );
        CREATE TABLE scorers (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL,
            kind TEXT NOT NULL,
            config TEXT NOT NULL,
            config_hash TEXT NOT NULL UNIQUE,
            created_at TEXT NOT NULL
        );
        CREATE TABLE scores (
            response_id INTEGER NOT NULL REFERENCES responses(id) ON DELETE CASCADE,
            scorer_id INTEGER NOT NULL REFERENCES scorers(id) ON DELETE CASCADE,
            value REAL,
            status TEXT NOT NULL,
            rationale TEXT,
            raw TEXT,
            error TEXT,
            prompt_tokens INTEGER NOT NULL DEFAULT 0,
            completion_tokens INTEGER NOT NULL DEFAULT 0,
            cost REAL NOT NULL DEFAULT 0,
            seed INTEGER,
            attempts INTEGER NOT NULL DEFAULT 1,
            created_at TEXT NOT NULL,
            PRIMARY KEY (scorer_id, response_id)
        ) WITHOUT ROWID;
        CREATE TABLE reference_answers (
            sample_id INTEGER NOT NULL REFERENCES samples(id) ON DELETE CASCADE,
            generator_hash TEXT NOT NULL,
            text TEXT,
            status TEXT NOT NULL,
            raw TEXT,
            error TEXT,
            prompt_tokens INTEGER NOT NULL DEFAULT 0,
            completion_tokens INTEGER NOT NULL DEFAULT 0,
            cost REAL NOT NULL DEFAULT 0,
            created_at TEXT NOT NULL,
            PRIMARY KEY (generator_hash, sample_id)
        ) WITHOUT ROWID;
        CREATE TABLE batches (
            id TEXT PRIMARY KEY,
            scorer_id INTEGER NOT NULL REFERENCES scorers(id) ON DELETE CASCADE,
            status TEXT NOT NULL,
            input_file_id TEXT,
            output_file_id TEXT,
            error_file_id TEXT,
            request_count INTEGER NOT NULL DEFAULT 0,
            meta TEXT,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        );
        CREATE TABLE decisions (
            id INTEGER PRIMARY KEY,
            sample_id INTEGER NOT NULL REFERENCES samples(id) ON DELETE CASCADE,
            action TEXT NOT NULL,
            best_idx INTEGER,
            note TEXT,
            reviewer TEXT NOT NULL,
            created_at TEXT NOT NULL,
            target_id INTEGER REFERENCES decisions(id),
            prev_state TEXT,
            undone INTEGER NOT NULL DEFAULT 0
        );
        CREATE TABLE sample_state (
            sample_id INTEGER PRIMARY KEY REFERENCES samples(id) ON DELETE CASCADE,
            action TEXT,
            best_idx INTEGER,
            note TEXT,
            reviewer TEXT,
            updated_at TEXT
        );
        CREATE TABLE sample_stats (
            scorer_id INTEGER NOT NULL REFERENCES scorers(id) ON DELETE CASCADE,
            sample_id INTEGER NOT NULL REFERENCES samples(id) ON DELETE CASCADE,
            k INTEGER NOT NULL,
            mean REAL,
            var REAL,
            margin REAL,
            tau REAL,
            cosine REAL,
            region TEXT,
            PRIMARY KEY (scorer_id, sample_id)
        ) WITHOUT ROWID;
        CREATE TABLE map_runs (
            scorer_id INTEGER PRIMARY KEY REFERENCES scorers(id) ON DELETE CASCADE,
            scores_fingerprint TEXT NOT NULL,
            thresholds TEXT NOT NULL,
            computed_at TEXT NOT NULL
        );
        CREATE INDEX decisions_reviewer ON decisions(reviewer, id);
        CREATE INDEX decisions_sample ON decisions(sample_id, id);
        CREATE INDEX stats_region_mean ON sample_stats(scorer_id, region, mean, sample_id);
        CREATE INDEX stats_region_var ON sample_stats(scorer_id, region, var, sample_id);
        CREATE INDEX stats_margin ON sample_stats(scorer_id, margin, sample_id);
        CREATE INDEX stats_tau ON sample_stats(scorer_id, tau, sample_id);
"""


MIGRATIONS: list[tuple[str, str]] = [
    ("001_initial", _M001_INITIAL),
]
"""Each entry is a name and an SQL script; append new ones, never edit an applied one."""


def migrate(conn: sqlite3.Connection) -> list[str]:
    """Apply every migration not yet recorded; return the names applied."""
    conn.execute(
        "CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)"
    )
    done = {row[0] for row in conn.execute("SELECT name FROM _migrations").fetchall()}
    applied = []
    for name, script in MIGRATIONS:
        if name in done:
            continue
        stamp = datetime.now(UTC).isoformat(timespec="seconds")
        try:
            conn.executescript(
                f"BEGIN IMMEDIATE;\n{script}\n"
                f"INSERT INTO _migrations (name, applied_at) VALUES ('{name}', '{stamp}');\n"
                "COMMIT;"
            )
        except Exception:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        applied.append(name)
    return applied


# -- review ------------------------------------------------------------------------------
# Keyset paging of the review queues: every (region, sort key) walks an index in order,
# and the suspects queue walks a partial index on the same expression as store.review.SUSPECT.
_M002_REVIEW = """
        CREATE INDEX stats_region_margin ON sample_stats(scorer_id, region, margin, sample_id);
        CREATE INDEX stats_region_tau ON sample_stats(scorer_id, region, tau, sample_id);
        CREATE INDEX stats_suspects ON sample_stats(scorer_id, coalesce(margin, tau), sample_id)
            WHERE coalesce(margin, tau) < 0;
        CREATE TABLE review_cursor (
            reviewer TEXT PRIMARY KEY,
            queue TEXT NOT NULL,
            sample_id INTEGER NOT NULL,
            updated_at TEXT NOT NULL
        );
        CREATE TABLE map_points (
            scorer_id INTEGER PRIMARY KEY REFERENCES scorers(id) ON DELETE CASCADE,
            scores_fingerprint TEXT NOT NULL,
            points TEXT NOT NULL
        );
"""
MIGRATIONS.append(("002_review_queues", _M002_REVIEW))
