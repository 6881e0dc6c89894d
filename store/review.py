"""What the review app asks of the store: queue specs, queue rows, sort keys."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

SUSPECT = "coalesce(st.margin, st.tau)"
"""The evidence a suspect is ranked by: the signed margin of a pair, else Kendall's τ."""

SORTS: dict[str, tuple[str, bool, str]] = {
    "mean": ("st.mean", False, "lowest mean"),
    "var": ("st.var", True, "highest variance"),
    "margin": ("st.margin", False, "most negative margin"),
    "tau": ("st.tau", False, "lowest agreement (τ)"),
    "evidence": (SUSPECT, False, "strongest evidence (margin or τ)"),
}
"""Sort name -> (SQL expression, descending?, what a reviewer reads)."""

STATUSES: dict[str, str] = {
    "all": "",
    "undecided": "ss.action IS NULL",
    "decided": "ss.action IS NOT NULL",
    "flip": "ss.action = 'flip'",
    "drop": "ss.action = 'drop'",
    "keep": "ss.action = 'keep'",
    "noted": "ss.note IS NOT NULL",
}
"""Decision-status filter name -> SQL condition on ``sample_state ss``."""


@dataclass(frozen=True, slots=True)
class Queue:
    """Which samples a reviewer walks through, and in what order."""

    scorer_id: int
    region: str | None = None
    """A map region, or None for the suspects (negative margin or τ)."""
    sort: str = "mean"
    status: str = "all"
    dataset_id: int | None = None
    search: str | None = None
    """Case-insensitive substring of the prompt."""

    @property
    def title(self) -> str:
        """What the queue is, in a reviewer's words."""
        return self.region or "Suspects"

    def with_(self, **changes: Any) -> Queue:
        """A copy with some fields changed."""
        return replace(self, **changes)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form, to remember where a reviewer was."""
        return {
            "scorer_id": self.scorer_id,
            "region": self.region,
            "sort": self.sort,
            "status": self.status,
            "dataset_id": self.dataset_id,
            "search": self.search,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Queue:
        """The inverse of `as_dict`; unknown sorts and statuses fall back to defaults."""
        sort = d.get("sort") if d.get("sort") in SORTS else "mean"
        status = d.get("status") if d.get("status") in STATUSES else "all"
        return cls(
            scorer_id=int(d["scorer_id"]),
            region=d.get("region"),
            sort=str(sort),
            status=str(status),
            dataset_id=d.get("dataset_id"),
            search=d.get("search"),
        )


@dataclass(frozen=True, slots=True)
class QueueRow:
    """One line of a review queue, with the key it is sorted by."""

    sample_id: int
    key: float
    dataset: str
    kind: str
    region: str | None
    mean: float | None
    var: float | None
    margin: float | None
    tau: float | None
    action: str | None
    best_idx: int | None
    note: str | None
    prompt: str
    """The first 200 characters of the prompt, as stored (clean it before showing)."""

    @property
    def cursor(self) -> tuple[float, int]:
        """The keyset position of this row."""
        return (self.key, self.sample_id)


@dataclass(frozen=True, slots=True)
class RegionRow:
    """A line of the map's region table."""

    region: str
    count: int
    reviewed: int
    flipped: int
    dropped: int
    kept: int
