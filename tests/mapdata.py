"""Small hand-made databases for the map and diagnosis tests."""

from __future__ import annotations

from collections.abc import Sequence

from auditor.model import ResponseIn, Role, SampleIn, ScoreIn
from store import Store


def add_dataset(
    store: Store,
    name: str,
    samples: Sequence[Sequence[tuple[str, float | None]]],
    *,
    prompts: Sequence[str] | None = None,
    sources: Sequence[str | None] | None = None,
) -> list[int]:
    """A dataset whose i-th sample has responses given as (role, rating); returns sample ids."""
    rows = []
    for i, responses in enumerate(samples):
        rows.append(
            SampleIn(
                row=i,
                conversation=[{"role": "user", "content": prompts[i] if prompts else f"q{i}"}],
                responses=[
                    ResponseIn(f"answer {j}", role=Role(role), model=f"m{j}", rating=rating)
                    for j, (role, rating) in enumerate(responses)
                ],
                record="{}",
                source=sources[i] if sources else None,
                kind="pair" if len(responses) == 2 and responses[0][0] != "none" else "multi",
            )
        )
    with store.transaction():
        did = store.add_dataset(
            name=name, source_path=f"{name}.jsonl", format="test", content_hash=name
        )
        before = set(store.sample_ids())
        store.add_samples(did, rows)
    return [s for s in store.sample_ids() if s not in before]


def score(store: Store, name: str, values: dict[tuple[int, int], float | None]) -> int:
    """Give responses (sample_id, idx) -> value scores from a scorer named ``name``."""
    scorer = store.scorer(name, "test", {"kind": "test", "name": name})
    ids = {(p.sample_id, p.idx): p.response_id for p in store.pending_responses(scorer.id)}
    store.save_scores(
        scorer.id, [ScoreIn(ids[key], v) for key, v in values.items() if v is not None]
    )
    return scorer.id


def pair(chosen: float | None, rejected: float | None) -> list[tuple[str, float | None]]:
    """A labelled pair with these ratings."""
    return [("chosen", chosen), ("rejected", rejected)]


def multi(*ratings: float | None) -> list[tuple[str, float | None]]:
    """A multi-response sample with these ratings."""
    return [("none", r) for r in ratings]
