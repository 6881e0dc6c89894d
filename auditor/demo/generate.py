"""Writes the bundled demo set: SYNTHETIC preference data made up for this project.

Run ``python -m auditor.demo.generate`` to rebuild ``demo.jsonl.gz``. Nothing here comes
from a real dataset: prompts, responses, models and ratings are generated from templates
with a fixed seed, shaped so that the map has three visible regions and a few planted
misannotations for the reviewer to find.
"""

from __future__ import annotations

import gzip
import json
import random
from pathlib import Path

TOPICS = [
    (
        "geography",
        "What is the capital of {x}?",
        [
            "France",
            "Japan",
            "Kenya",
            "Peru",
            "Norway",
            "Canada",
            "Egypt",
            "Chile",
            "India",
            "Spain",
        ],
    ),
    (
        "cooking",
        "How do I make a simple {x} at home?",
        ["omelette", "risotto", "flatbread", "lentil soup", "pancake", "curry"],
    ),
    (
        "coding",
        "Write a Python function that {x}.",
        [
            "reverses a string",
            "checks for a prime",
            "merges two sorted lists",
            "counts words",
            "flattens a nested list",
        ],
    ),
    (
        "science",
        "Explain {x} to a twelve-year-old.",
        ["photosynthesis", "gravity", "tides", "the water cycle", "magnetism", "DNA"],
    ),
    (
        "advice",
        "Give me three tips for {x}.",
        [
            "sleeping better",
            "learning a language",
            "saving money",
            "running a first 5k",
            "writing a cover letter",
        ],
    ),
    (
        "math",
        "What is {x}? Show your steps.",
        [
            "17 times 23",
            "15% of 240",
            "the square root of 196",
            "2 to the power of 10",
            "one third plus one quarter",
        ],
    ),
]

MODELS = ["demo-large", "demo-medium", "demo-small", "demo-tiny"]


FILLER = [
    "I am not sure about this one, maybe look it up.",
    "That is a hard question and many people have opinions about it.",
    "It depends on many things.",
    "Some sources say different things here.",
    "Let me know if there is anything else.",
]
WORDS = [
    "clear",
    "simple",
    "first",
    "then",
    "because",
    "usually",
    "carefully",
    "small",
    "large",
    "warm",
    "steady",
    "exact",
    "known",
    "useful",
    "common",
    "basic",
]


def _facts(rng: random.Random, topic: str, x: str, n: int = 8) -> list[str]:
    return [
        f"Point {j + 1} about {x} in {topic}: "
        + " ".join(rng.choice(WORDS) for _ in range(6))
        + "."
        for j in range(n)
    ]


def make_records(n: int = 300, seed: int = 7) -> list[dict[str, object]]:
    """``n`` synthetic prompts with four rated responses each.

    A response of quality q (1-10) repeats about 0.8q of the reference's eight points and
    pads the rest with filler, so similarity to the reference follows quality.
    """
    rng = random.Random(seed)
    records = []
    for i in range(n):
        topic, template, xs = TOPICS[i % len(TOPICS)]
        x = rng.choice(xs)
        prompt = template.format(x=x)
        facts = _facts(rng, topic, x)
        # three kinds of sample, so the map has shape: easy (all good), mixed, hard (all weak)
        kind = rng.random()
        responses: list[dict[str, object]] = []
        qualities: list[float] = []
        ratings: list[float] = []
        for m, model in enumerate(MODELS):
            if kind < 0.35:
                quality = rng.uniform(7.5, 9.5) - 0.3 * m
            elif kind < 0.7:
                quality = rng.uniform(1.5, 9.5)
            else:
                quality = rng.uniform(2.0, 5.0)
            kept = max(0, min(len(facts), round(quality * 0.8)))
            sentences = facts[:kept] + [rng.choice(FILLER) for _ in range(len(facts) - kept)]
            text = " ".join(sentences) + f" (draft {rng.randint(100, 999)} by {model})"
            rating = max(1.0, min(10.0, round(quality + rng.gauss(0, 0.4), 1)))
            responses.append({"model": model, "text": text, "rating": rating})
            qualities.append(quality)
            ratings.append(rating)
        if 0.35 <= kind < 0.7 and rng.random() < 0.17:
            # planted misannotation: the best response gets the worst rating and so on
            ranked = sorted(range(len(responses)), key=lambda j: qualities[j])
            for j, value in zip(ranked, sorted(ratings, reverse=True), strict=True):
                responses[j]["rating"] = value
        records.append(
            {
                "id": f"demo-{i:04d}",
                "synthetic": True,
                "source": topic,
                "prompt": prompt,
                "reference": " ".join(facts),
                "responses": responses,
            }
        )
    return records


def main() -> None:
    """Rebuild the packaged demo file."""
    out = Path(__file__).with_name("demo.jsonl.gz")
    lines = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in make_records())
    with out.open("wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as f:
        f.write(lines.encode("utf-8"))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
