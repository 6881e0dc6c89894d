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

GOOD = [
    "Here is a clear answer. {core} I have kept it short and checked each step.",
    "{core} If you want, I can go into more detail on any part of this.",
    "Good question. {core} This is the standard, well-established answer.",
]
OK = [
    "{core} That is roughly it.",
    "I think {core_lower} Hope that helps.",
]
BAD = [
    "I am not sure about this one, maybe look it up.",
    "That is a hard question. Many people have opinions about it.",
    "Sorry, I cannot help with that.",
    "It depends on many things.",
]


def _core(topic: str, x: str) -> str:
    return f"For {x}, the key facts about {topic} are laid out one by one."


def make_records(n: int = 300, seed: int = 7) -> list[dict[str, object]]:
    """``n`` synthetic prompts with four rated responses each."""
    rng = random.Random(seed)
    records = []
    for i in range(n):
        topic, template, xs = TOPICS[i % len(TOPICS)]
        x = rng.choice(xs)
        prompt = template.format(x=x)
        core = _core(topic, x)
        # three kinds of sample, so the map has shape: easy (all good), mixed, hard (all weak)
        kind = rng.random()
        responses = []
        for m, model in enumerate(MODELS):
            if kind < 0.35:
                quality = rng.uniform(7.5, 9.5) - 0.3 * m
            elif kind < 0.7:
                quality = rng.uniform(1.5, 9.5)
            else:
                quality = rng.uniform(2.0, 5.0)
            if quality >= 7:
                text = rng.choice(GOOD).format(core=core)
            elif quality >= 4:
                text = rng.choice(OK).format(core=core, core_lower=core[0].lower() + core[1:])
            else:
                text = rng.choice(BAD)
            text += f" (draft {rng.randint(100, 999)} by {model})"
            rating = max(1.0, min(10.0, round(quality + rng.gauss(0, 0.4), 1)))
            responses.append({"model": model, "text": text, "rating": rating})
        if rng.random() < 0.06:  # planted misannotation: ratings reversed
            ratings = [r["rating"] for r in responses][::-1]
            for r, value in zip(responses, ratings, strict=True):
                r["rating"] = value
        records.append(
            {
                "id": f"demo-{i:04d}",
                "synthetic": True,
                "source": topic,
                "prompt": prompt,
                "reference": f"{core} A reference answer written for the demo.",
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
