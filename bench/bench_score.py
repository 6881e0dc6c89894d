"""Scoring throughput against a rate-limited endpoint, beside a one-call-at-a-time loop.

A local OpenAI-compatible server (tests/fake_openai.py) enforces 600 requests per minute
(a token bucket holding one second of allowance; over it: 429 with retry-after-ms) and
answers after 0.3 s. The judge scores 2,000 responses, one per call, with --rpm 600 and the
default concurrency; the figure is the achieved rate once warm (after the first 10 s) over
the allowed rate. Then every response must hold exactly one ok score with the value the
server gave, and the server must have been paid exactly once per request. In the same run,
a plain loop with the synchronous client, one call at a time (what the paper's reference code
does), scores a slice of the same responses for comparison.

    python bench/bench_score.py [--responses 2000] [--baseline 100] [--unpaced]
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from auditor.scorers.cost import token_estimator  # noqa: E402
from auditor.scorers.judge import judge_config, load_template, plan_calls  # noqa: E402
from auditor.scorers.llm import EndpointOptions  # noqa: E402
from auditor.scorers.session import ScoreSettings, run_judge  # noqa: E402
from store import Store  # noqa: E402
from tests.conftest import make_scoring_db  # noqa: E402
from tests.fake_openai import FakeOpenAI, intended_score  # noqa: E402

RPM = 600
LATENCY = 0.3
WARMUP = 10.0


def scored_run(n_responses: int, *, rpm: float | None, concurrency: int) -> dict[str, float]:
    """Score ``n_responses`` with the judge against a fresh rate-limited server."""
    fake = FakeOpenAI(latency=LATENCY, rpm=RPM).start()
    os.environ.update(OPENAI_API_KEY="sk-bench", OPENAI_BASE_URL=fake.base_url)
    with tempfile.TemporaryDirectory() as tmp:
        db = make_scoring_db(Path(tmp) / "bench.db", n_responses // 2)
        settings = ScoreSettings(
            model="gpt-4o-mini",
            endpoint=EndpointOptions(rpm=rpm, concurrency=concurrency, timeout=30),
        )
        t0 = time.monotonic()
        with Store(db) as store:
            report = run_judge(store, settings, per_call="response")
        elapsed = time.monotonic() - t0
        with sqlite3.connect(db) as c:
            rows = c.execute(
                "SELECT r.text, s.value, s.status FROM responses r"
                " LEFT JOIN scores s ON s.response_id = r.id"
            ).fetchall()
    fake.stop()
    lost = sum(1 for text, value, status in rows if status != "ok" or value != intended_score(text))
    times = sorted(fake.ok_times)
    warm = [t for t in times if t - t0 >= WARMUP]
    warm_rate = (len(warm) - 1) / (warm[-1] - warm[0]) if len(warm) > 1 else 0.0
    return {
        "responses": len(rows),
        "elapsed": elapsed,
        "overall_rate": len(times) / elapsed,
        "warm_rate": warm_rate,
        "allowed": RPM / 60.0,
        "lost": lost,
        "paid_twice": sum(n - 1 for n in fake.paid.values()),
        "paid": sum(fake.paid.values()),
        "rate_limited": report.stats.rate_limited,
        "requests": report.stats.requests,
    }


def one_at_a_time(n_calls: int) -> dict[str, float]:
    """The reference code's way: a synchronous loop, one request after the other."""
    from openai import OpenAI

    fake = FakeOpenAI(latency=LATENCY, rpm=RPM).start()
    client = OpenAI(api_key="sk-bench", base_url=fake.base_url)
    with tempfile.TemporaryDirectory() as tmp:
        db = make_scoring_db(Path(tmp) / "base.db", n_calls // 2)
        with Store(db) as store:
            template = load_template()
            config = judge_config("gpt-4o-mini", template, per_call="response")
            scorer = store.scorer("judge", "judge", config)
            calls = plan_calls(
                store.pending_responses(scorer.id),
                template,
                config,
                token_estimator("gpt-4o-mini")[0],
            )
            t0 = time.monotonic()
            for call in calls:
                client.chat.completions.create(**call.job.body("gpt-4o-mini"))
            elapsed = time.monotonic() - t0
    fake.stop()
    return {"calls": len(calls), "elapsed": elapsed, "rate": len(calls) / elapsed}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--responses", type=int, default=2000)
    parser.add_argument("--baseline", type=int, default=100, help="calls in the plain loop")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument(
        "--unpaced", action="store_true", help="also run without --rpm (429s steer alone)"
    )
    args = parser.parse_args()
    os.environ.setdefault("AUDITOR_BACKOFF_BASE", "0.2")

    runs = [
        ("auditor --rpm 600", scored_run(args.responses, rpm=RPM, concurrency=args.concurrency))
    ]
    if args.unpaced:
        runs.append(
            (
                "auditor, no --rpm",
                scored_run(args.responses, rpm=None, concurrency=args.concurrency),
            )
        )
    base = one_at_a_time(args.baseline)

    allowed = RPM / 60.0
    print(f"endpoint: {RPM} requests/min enforced ({allowed:.1f}/s), {LATENCY} s latency")
    print(f"{'run':<22}{'responses':>10}{'time s':>9}{'req/s warm':>12}{'of allowed':>12}"
          f"{'429s':>7}{'lost':>6}{'paid 2x':>9}")  # fmt: skip
    for name, r in runs:
        print(
            f"{name:<22}{r['responses']:>10,}{r['elapsed']:>9.1f}{r['warm_rate']:>12.2f}"
            f"{r['warm_rate'] / allowed:>11.1%}{r['rate_limited']:>7}{r['lost']:>6}"
            f"{r['paid_twice']:>9}"
        )
    projected = args.responses / base["rate"]
    print(
        f"{'one call at a time':<22}{base['calls']:>10,}{base['elapsed']:>9.1f}"
        f"{base['rate']:>12.2f}{base['rate'] / allowed:>11.1%}"
        f"   ({args.responses:,} responses would take {projected:,.0f} s)"
    )
    ok = all(r["warm_rate"] / allowed >= 0.95 and not r["lost"] and not r["paid_twice"]
             for name, r in runs if name.endswith("--rpm 600"))  # fmt: skip
    print(
        "target (>= 95 % of allowed once warm, nothing lost or paid twice):",
        "met" if ok else "MISSED",
    )


if __name__ == "__main__":
    main()
