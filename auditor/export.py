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
import gzip
import hashlib
import json
import os
import random
import re
import shlex
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from auditor.model import Action, Region

if TYPE_CHECKING:
    from store import Store
    from store.store import DecisionState, ExportSample

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

Response = tuple[int, str, str, "str | None", "float | None", "float | None"]
"""(idx, role, text, model, rating, score) as `Store.export_samples` yields them."""


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

    def as_cli(self, out: str | os.PathLike[str]) -> str:
        """The `auditor export` command line that repeats this export."""
        args = ["auditor", "export", str(out), "--format", self.format]
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


@dataclass(slots=True)
class Pair:
    """One training pair: texts, their models, and the scores reported beside them."""

    chosen: str
    rejected: str
    score_chosen: float | None
    score_rejected: float | None


def _labelled(responses: list[Response]) -> tuple[Response, Response] | None:
    chosen = [r for r in responses if r[1] == "chosen"]
    rejected = [r for r in responses if r[1] == "rejected"]
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
    return pair is not None and decision.best_idx is not None and decision.best_idx == pair[1][0]


class _Labeller:
    """Turns a sample (and its decision) into training pairs, counting why some give none."""

    def __init__(self, rank_by: str, seed: int) -> None:
        self.use_scorer = rank_by == "scorer"
        self.seed = seed
        self.why_none: Counter[str] = Counter()

    def _value(self, r: Response) -> float | None:
        return r[5] if self.use_scorer else r[4]

    def _pair_label(self, s: ExportSample, d: DecisionState | None) -> Pair | None:
        pair = _labelled(s.responses)
        if pair is None:
            best = d.best_idx if d is not None else None
            if len(s.responses) == 2 and best in (0, 1):  # a reviewer settled a tie
                c, r = s.responses[best], s.responses[1 - best]
                return Pair(c[2], r[2], c[4], r[4])
            self.why_none["tie"] += 1
            return None
        c, r = pair
        if is_flipped(s.responses, d):
            return Pair(r[2], c[2], c[4], r[4])  # texts trade places, ratings stay put
        return Pair(c[2], r[2], c[4], r[4])

    def _ranked(
        self, s: ExportSample, d: DecisionState | None
    ) -> tuple[Response, list[Response], bool] | None:
        """The best response, the other scored ones, and whether a reviewer named the best."""
        scored = [r for r in s.responses if self._value(r) is not None]
        best_idx = d.best_idx if d is not None else None
        named = next((r for r in s.responses if r[0] == best_idx), None)
        if named is not None:
            others = [r for r in scored if r[0] != best_idx]
            if not others:
                self.why_none["unscored"] += 1
                return None
            return named, others, True
        if len(scored) < 2:
            self.why_none["unscored"] += 1
            return None
        # the first of equal best scores, so a rerun picks the same one
        best = max(scored, key=lambda r: (self._value(r), -r[0]))
        return best, [r for r in scored if r is not best], False

    def _is_pair_sample(self, s: ExportSample) -> bool:
        return s.kind == "pair" and len(s.responses) == 2

    def one(self, s: ExportSample, d: DecisionState | None) -> list[Pair]:
        """Best vs worst (a pair sample: its own pair)."""
        if self._is_pair_sample(s):
            p = self._pair_label(s, d)
            return [p] if p else []
        ranked = self._ranked(s, d)
        if ranked is None:
            return []
        best, others, named = ranked
        worst = min(others, key=lambda r: (self._value(r), r[0]))
        if not named and self._value(worst) == self._value(best):
            self.why_none["all_equal"] += 1
            return []
        return [self._multi_pair(best, worst)]

    def binarized(self, s: ExportSample, d: DecisionState | None) -> list[Pair]:
        """Best vs a random other with a lower score (seeded per sample)."""
        if self._is_pair_sample(s):
            p = self._pair_label(s, d)
            return [p] if p else []
        ranked = self._ranked(s, d)
        if ranked is None:
            return []
        best, others, named = ranked
        lower = others if named else [r for r in others if self._value(r) < self._value(best)]  # type: ignore[operator]
        if not lower:
            self.why_none["all_equal"] += 1
            return []
        # seeded by (seed, sample) so a sample's pick does not depend on what else is selected
        rng = random.Random(f"{self.seed}:{s.id}")
        return [self._multi_pair(best, rng.choice(lower))]

    def every(self, s: ExportSample, d: DecisionState | None) -> list[Pair]:
        """Every pair whose scores differ, the higher chosen; a named best beats every other."""
        if self._is_pair_sample(s):
            p = self._pair_label(s, d)
            return [p] if p else []
        ranked = self._ranked(s, d)
        if ranked is None:
            return []
        best, others, named = ranked
        pool = others if named else sorted([best, *others], key=lambda r: r[0])
        pairs = [self._multi_pair(best, o) for o in others] if named else []
        for i, a in enumerate(pool):
            for b in pool[i + 1 :]:
                va, vb = self._value(a), self._value(b)
                if va is None or vb is None or va == vb:
                    continue
                pairs.append(self._multi_pair(a, b) if va > vb else self._multi_pair(b, a))
        if not pairs:
            self.why_none["all_equal"] += 1
        return pairs

    def _multi_pair(self, c: Response, r: Response) -> Pair:
        return Pair(c[2], r[2], self._value(c), self._value(r))


# -- prompts ---------------------------------------------------------------------------------

_HH_NAMES = {"user": "Human", "assistant": "Assistant"}


def prompt_string(conversation: list[dict[str, str]]) -> str:
    """A single user turn as its text; a longer conversation as an HH transcript ending in
    ``\\n\\nAssistant:`` (TRL's standard format has one prompt string)."""
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


class _Writer:
    """Writes rows to a temporary file beside ``out``; `commit` renames it into place."""

    def __init__(self, out: Path, container: str, gz: bool, fmt: str) -> None:
        self.out, self.container, self.gz = out, container, gz
        fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp")
        self.tmp = Path(tmp)
        self.raw: IO[bytes] = os.fdopen(fd, "wb", buffering=1 << 20)
        self.stream: IO[bytes] = self.raw
        if gz:
            # mtime 0 and the output's own name: the same export gives the same bytes
            self.stream = gzip.GzipFile(  # type: ignore[assignment]
                filename=out.name[:-3], fileobj=self.raw, mode="wb", compresslevel=6, mtime=0
            )
        self.first = True
        self.parquet: Any = None
        self.tables: list[Any] = []
        self.schema = _parquet_schema(fmt) if container == "parquet" else None
        if container == "json":
            self.stream.write(b"[\n")

    def write(self, rows: list[Any]) -> None:
        """Write rows: dicts, or JSON text kept verbatim (JSON containers)."""
        if not rows:
            return
        if self.container == "parquet":
            self._write_parquet(rows)
            return
        dumps = json.dumps
        lines = [r if isinstance(r, str) else dumps(r, ensure_ascii=False) for r in rows]
        if self.container == "json":
            text = ("" if self.first else ",\n") + ",\n".join(lines)
        else:
            text = "\n".join(lines) + "\n"
        self.first = False
        self.stream.write(text.encode("utf-8"))

    def _write_parquet(self, rows: list[Any]) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        values = [json.loads(r) if isinstance(r, str) else r for r in rows]
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

    def commit(self) -> str:
        """Finish the file, move it into place and return its SHA-256."""
        try:
            if self.container == "parquet":
                self._finish_parquet()
            elif self.container == "json":
                self.stream.write(b"]\n" if self.first else b"\n]\n")
            if self.stream is not self.raw:
                self.stream.close()
            self.raw.flush()
            os.fsync(self.raw.fileno())
            self.raw.close()
            with self.tmp.open("rb") as f:
                digest = hashlib.file_digest(f, "sha256").hexdigest()
            os.replace(self.tmp, self.out)
        except BaseException:
            self.abort()
            raise
        return digest

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
        with contextlib.suppress(Exception):
            if self.parquet is not None:
                self.parquet.close()
        with contextlib.suppress(Exception):
            if self.stream is not self.raw:
                self.stream.close()
        with contextlib.suppress(Exception):
            self.raw.close()
        self.tmp.unlink(missing_ok=True)


def _write_text_atomically(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


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
    if out.is_dir() or str(out).endswith(os.sep):
        raise ExportError(f"{out}: is a folder; give a file name such as {out / 'clean.jsonl'}")
    if not out.parent.is_dir():
        raise ExportError(f"{out}: the folder {out.parent} does not exist; create it first")
    if manifest.is_dir():
        raise ExportError(f"{manifest}: is a folder; the manifest cannot be written there")
    db = Path(store.path)
    inputs = [
        (Path(d["source_path"]), f"the input file of dataset {d['name']!r}")
        for d in store.datasets()
    ]
    inputs += [(db, "the database"), (Path(f"{db}-wal"), "the database's journal")]
    for target in (out, manifest):
        for path, what in inputs:
            if _same_file(target, path):
                raise ExportError(
                    f"{target}: is {what}; an export never overwrites its input. "
                    "Choose another file name"
                )


# -- the export --------------------------------------------------------------------------------


def _tool_version() -> str:
    try:
        from importlib.metadata import version

        return version("alignment-auditor")
    except Exception:  # not installed: running from a checkout
        from auditor import __version__

        return __version__


def export(
    store: Store,
    out_path: str | os.PathLike[str],
    options: ExportOptions,
    *,
    on_progress: Callable[[int, int], None] | None = None,
) -> ExportReport:
    """Write the selected samples to ``out_path`` in ``options.format`` and a manifest beside it.

    ``on_progress(done, total)`` is called after every chunk of samples; an exception
    raised from it (or anywhere) stops the export and leaves any earlier file untouched.
    Raises `ExportError` on bad input.
    """
    from store import StoreError

    started = time.perf_counter()
    fmt = options.format
    if fmt not in FORMATS:
        raise ExportError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
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

    out = Path(out_path)
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
    map_scorer = scorer.id if needs_map and scorer is not None else None
    score_of = scorer.id if options.rank_by == "scorer" and scorer is not None else None
    thresholds = None
    region_counts: dict[str, int] = {}
    if needs_map:
        assert scorer is not None
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

    decisions: dict[int, DecisionState] = {}
    if options.apply_decisions or options.reviewed_only:
        decisions = store.decisions()
    decided = {
        sid
        for sid, d in decisions.items()
        if d.action in (Action.FLIP.value, Action.DROP.value, Action.KEEP.value)
        or d.best_idx is not None
    }

    only: set[int] | None = None
    if options.random_third:
        assert scorer is not None
        mapped = store.mapped_sample_ids(scorer.id, dataset_id=dataset_id)
        # the paper's baseline: a seeded third of the mapped samples, drawn from them in id order
        only = set(random.Random(options.seed).sample(mapped, round(len(mapped) / 3)))
    if options.reviewed_only:
        only = decided if only is None else only & decided

    samples_in = store.export_count(dataset_id=dataset_id)
    total = store.export_count(
        dataset_id=dataset_id,
        scorer_id=map_scorer,
        regions=regions or None,
    )
    formats = {
        d["id"]: (d["format"], json.loads(d["options"] or "{}").get("map"))
        for d in store.datasets()
    }

    report = ExportReport(str(out), str(manifest_path), fmt, samples_in=samples_in)
    labeller = _Labeller(options.rank_by, options.seed)
    applied: Counter[str] = Counter()
    by_reviewer: dict[str, Counter[str]] = {}
    not_applied: Counter[str] = Counter()
    datasets_out: Counter[int] = Counter()
    ids_hash = hashlib.sha256()
    apply = options.apply_decisions
    make_pairs = {
        "trl": labeller.one,
        "trl-chat": labeller.one,
        "pairs-all": labeller.every,
        "binarized": labeller.binarized,
    }.get(fmt)
    loads = json.loads

    writer = _Writer(out, container, gz, fmt)
    try:
        done = 0
        for chunk in store.export_samples(
            dataset_id=dataset_id,
            scorer_id=map_scorer,
            regions=regions or None,
            with_record=fmt == "original",
            score_of=score_of,
            chunk=CHUNK,
        ):
            rows: list[Any] = []
            for s in chunk:
                if only is not None and s.id not in only:
                    continue
                report.selected += 1
                ids_hash.update(b"%d," % s.id)
                d = decisions.get(s.id) if apply else None
                if d is not None and s.id in decided:
                    kind = _decision_kind(s, d)
                    applied[kind] += 1
                    by_reviewer.setdefault(d.reviewer or "?", Counter())[kind] += 1
                    if d.action == Action.DROP.value:
                        continue
                if make_pairs is None:
                    rows.append(_original_row(s, d, formats, container, not_applied))
                    produced = 1
                else:
                    pairs = make_pairs(s, d)
                    if (
                        d is not None
                        and d.action == Action.FLIP.value
                        and not _labelled(s.responses)
                    ):
                        not_applied["flip_without_label"] += 1
                    produced = len(pairs)
                    if produced:
                        prompt = _prompt(s, fmt, loads)
                        rows.extend(_pair_row(fmt, prompt, p) for p in pairs)
                if produced:
                    report.samples_out += 1
                    report.records_out += produced
                    datasets_out[s.dataset_id] += 1
            writer.write(rows)
            done += len(chunk)
            if on_progress is not None:
                on_progress(done, total)
        digest = writer.commit()
    except BaseException:
        writer.abort()
        raise

    report.counts = {
        "samples_in_scope": samples_in,
        "in_selected_regions": total,
        "selected": report.selected,
        "dropped_by_decision": applied.get("drop", 0),
        **{f"no_pair_{k}": v for k, v in sorted(labeller.why_none.items())},
        "samples_out": report.samples_out,
        "records_out": report.records_out,
    }
    report.decisions = dict(applied)
    if not_applied:
        report.warnings.append(
            "decisions the format cannot express, left out: "
            + ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in sorted(not_applied.items()))
        )
    if labeller.why_none:
        report.warnings.append(
            "samples that gave no pair: "
            + ", ".join(
                f"{n:,} {k.replace('_', ' ')}" for k, n in sorted(labeller.why_none.items())
            )
            + (
                " (try --rank-by scorer)"
                if labeller.why_none.get("unscored") and options.rank_by == "annotations"
                else ""
            )
        )
    report.seconds = time.perf_counter() - started
    manifest = {
        "tool": {"name": "alignment-auditor", "version": _tool_version()},
        "command_line": options.command_line or options.as_cli(out),
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "output": {
            "path": str(out),
            "format": fmt,
            "container": container,
            "gzip": gz,
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
                "samples_exported": datasets_out.get(d["id"], 0),
            }
            for d in store.datasets()
            if (dataset_id is None or d["id"] == dataset_id)
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
        if thresholds is None
        else {"thresholds": thresholds, "region_counts": region_counts},
        "selection": {
            "regions": regions,
            "paper_subset": options.paper_subset,
            "random_third": options.random_third,
            "seed": options.seed,
            "dataset": options.dataset,
            "reviewed_only": options.reviewed_only,
            "decisions": "applied" if apply else "ignored",
            "rank_by": options.rank_by,
            "sample_ids_sha256": ids_hash.hexdigest(),
        },
        "counts": report.counts,
        "decisions": {
            "applied": dict(applied),
            "by_reviewer": {k: dict(v) for k, v in sorted(by_reviewer.items())},
            "not_applied": dict(not_applied),
        },
        "warnings": report.warnings,
        "seconds": round(report.seconds, 3),
    }
    _write_text_atomically(manifest_path, json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
    return report


def _decision_kind(s: ExportSample, d: DecisionState) -> str:
    if d.action in (Action.FLIP.value, Action.DROP.value):
        return str(d.action)
    if d.best_idx is not None:
        return "flip" if is_flipped(s.responses, d) else "best"
    return "keep"


def _prompt(s: ExportSample, fmt: str, loads: Callable[[str], Any]) -> Any:
    conversation = loads(s.conversation)
    return conversation if fmt == "trl-chat" else prompt_string(conversation)


def _pair_row(fmt: str, prompt: Any, p: Pair) -> dict[str, Any]:
    if fmt == "trl-chat":
        return {
            "prompt": prompt,
            "chosen": [{"role": "assistant", "content": p.chosen}],
            "rejected": [{"role": "assistant", "content": p.rejected}],
            "score_chosen": p.score_chosen,
            "score_rejected": p.score_rejected,
        }
    return {
        "prompt": prompt,
        "chosen": p.chosen,
        "rejected": p.rejected,
        "score_chosen": p.score_chosen,
        "score_rejected": p.score_rejected,
    }


def _original_row(
    s: ExportSample,
    d: DecisionState | None,
    formats: dict[int, tuple[str, str | None]],
    container: str,
    not_applied: Counter[str],
) -> str:
    raw = s.record or ""
    if d is not None:
        fmt, map_spec = formats.get(s.dataset_id, ("", None))
        labelled = _labelled(s.responses) is not None
        if labelled and is_flipped(s.responses, d):
            record = json.loads(raw)
            if flip_record(fmt, record, map_spec):
                return dumps_like(record, raw)
            not_applied[f"flip_in_{fmt or 'unknown'}_records"] += 1
        elif d.action == Action.FLIP.value:
            not_applied["flip_without_label"] += 1
        elif d.best_idx is not None and not labelled:
            not_applied["best_response_in_original_records"] += 1
    if "\n" in raw and container != "json":
        return dumps_like(json.loads(raw), raw)  # a pretty-printed array element: one line
    return raw
