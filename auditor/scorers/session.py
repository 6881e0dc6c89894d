"""A scoring run of the judge or reference scorer: plan, estimate, call, store as results arrive.

Usable headless (from a script or a notebook) as well as from `auditor score`.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from auditor.model import ScoreIn
from auditor.scorers.cost import Price, load_prices, price_for, token_estimator
from auditor.scorers.llm import (
    EndpointError,
    EndpointOptions,
    Job,
    Outcome,
    Progress,
    Runner,
    RunStats,
    make_client,
)

if TYPE_CHECKING:
    from store import Store
    from store.store import PendingResponse

# what a judge usually writes per response, and a reference answer's usual length, in tokens:
# the dry run's expected figure (its upper bound uses max_tokens)
JUDGE_TYPICAL_COMPLETION = 80
REFERENCE_TYPICAL_COMPLETION = 450


class BudgetError(ValueError):
    """A budget that cannot be enforced, with a message meant for the user."""


@dataclass(slots=True)
class ScoreSettings:
    """How to run: the model, the endpoint and its pacing, which responses, money limits."""

    model: str
    endpoint: EndpointOptions = field(default_factory=EndpointOptions)
    budget: float | None = None
    dry_run: bool = False
    retry_failed: bool = False
    batch: bool = False
    limit: int | None = None
    sample_ids: list[int] | None = None
    prices_file: str | None = None
    poll_interval: float = 30.0
    wait: bool = True
    progress: Progress = field(default_factory=Progress)
    say: Callable[[str], None] = lambda _: None


@dataclass(slots=True)
class Estimate:
    """What a run would send and cost, before any call."""

    requests: int
    prompt_tokens: int
    completion_tokens: int
    max_completion_tokens: int
    cost: float
    max_cost: float
    exact_tokens: bool
    price: Price


@dataclass(slots=True)
class ScoreReport:
    """What a run did."""

    scorer: str
    config_hash: str
    pending: int
    statuses: Counter[str] = field(default_factory=Counter)
    stats: RunStats = field(default_factory=RunStats)
    estimate: Estimate | None = None
    interrupted: bool = False
    batches: list[str] = field(default_factory=list)
    batches_waiting: int = 0
    references_generated: int = 0
    references_failed: int = 0


def _price(settings: ScoreSettings) -> Price:
    price = price_for(settings.model, load_prices(settings.prices_file))
    return price.batched() if settings.batch else price


def _estimate(jobs: list[Job], typical: int, price: Price, exact: bool) -> Estimate:
    prompt = sum(j.est_prompt_tokens for j in jobs)
    expected = sum(min(j.max_tokens, typical * j.units) for j in jobs)
    worst = sum(j.max_tokens for j in jobs)
    return Estimate(
        len(jobs),
        prompt,
        expected,
        worst,
        price.cost(prompt, expected),
        price.cost(prompt, worst),
        exact,
        price,
    )


def _check_budget(settings: ScoreSettings, price: Price) -> None:
    if settings.budget is not None and not price.known:
        raise BudgetError(
            f"no price is known for {settings.model!r}, so --budget cannot be enforced: give"
            ' --prices FILE with {"%s": {"input": USD per 1M, "output": USD per 1M}}'
            % settings.model
        )


def _pick(store: Store, scorer_id: int, settings: ScoreSettings) -> list[PendingResponse]:
    pending: list[PendingResponse] = store.pending_responses(
        scorer_id,
        retry_failed=settings.retry_failed,
        sample_ids=settings.sample_ids,
        limit=settings.limit,
    )
    return pending


async def _run_jobs(
    store: Store,
    scorer_id: int,
    settings: ScoreSettings,
    price: Price,
    jobs: list[Job],
    calls: dict[str, Any],
    kind: str,
    on_outcome: Callable[[str, Any, Outcome], int],
    report: ScoreReport,
) -> None:
    """Run ``jobs`` live (paced, retried) or through the Batch API, storing as they land."""
    client = make_client(settings.endpoint)
    try:
        if not settings.batch:
            runner = Runner(
                client,
                settings.model,
                settings.endpoint,
                price,
                budget=settings.budget,
                progress=settings.progress,
            )
            report.stats = runner.stats
            await runner.run(
                jobs, lambda job, outcome: on_outcome(job.key, calls[job.key], outcome)
            )
            return
        from auditor.scorers import batch

        if settings.budget is not None:
            # a batch is paid for whole: submit only what fits the budget at its worst case
            worst, kept = 0.0, []
            for job in jobs:
                worst += price.cost(job.est_prompt_tokens, job.max_tokens)
                if worst > settings.budget:
                    break
                kept.append(job)
            if len(kept) < len(jobs):
                report.stats.stopped_by_budget = True
                report.stats.jobs_skipped = len(jobs) - len(kept)
            jobs = kept
        if jobs:
            batch_id = await batch.submit(
                store, client, scorer_id, settings.model, jobs, calls, kind
            )
            report.batches.append(batch_id)
            settings.say(f"batch {batch_id}: submitted {len(jobs):,} requests")
        for row in store.open_batches(scorer_id):
            if row["meta"].get("kind") != kind:
                continue

            def handle(custom_id: str, call: Any, outcome: Outcome) -> None:
                report.stats.prompt_tokens += outcome.prompt_tokens
                report.stats.completion_tokens += outcome.completion_tokens
                report.stats.cost += outcome.cost
                settings.progress.advance(on_outcome(custom_id, call, outcome), report.stats)

            report.batches_waiting += 1
            status = await batch.collect(
                store,
                client,
                row,
                price,
                handle,
                poll_interval=settings.poll_interval,
                wait=settings.wait,
                say=settings.say,
            )
            if status in batch.TERMINAL:
                report.batches_waiting -= 1
    finally:
        await client.close()


def _covered_by_batches(store: Store, scorer_id: int, kind: str) -> set[int]:
    """Response (judge) or sample (reference) ids already in a submitted, uncollected batch."""
    covered: set[int] = set()
    for row in store.open_batches(scorer_id):
        if row["meta"].get("kind") != kind:
            continue
        for call in row["meta"]["calls"].values():
            if kind == "judge":
                covered.update(int(rid) for rid in call["ids"].values())
            else:
                covered.add(int(call))
    return covered


def _run(coro: Any, report: ScoreReport) -> None:
    try:
        asyncio.run(coro)
    except KeyboardInterrupt:
        report.interrupted = True
    finally:
        report.statuses = +report.statuses


def run_judge(
    store: Store,
    settings: ScoreSettings,
    *,
    template_path: str | None = None,
    per_call: str = "sample",
    structured: bool = True,
    shuffle_seed: int = 0,
    max_tokens: int = 512,
) -> ScoreReport:
    """Rate every pending response with the LLM judge; store each score as it arrives."""
    from auditor.scorers.judge import (
        JudgeCall,
        judge_config,
        judge_scores,
        load_template,
        plan_calls,
    )

    template = load_template(template_path)
    config = judge_config(
        settings.model,
        template,
        per_call=per_call,
        structured=structured,
        shuffle_seed=shuffle_seed,
        max_tokens=max_tokens,
    )
    scorer = store.scorer(f"judge:{settings.model}", "judge", config)
    pending = _pick(store, scorer.id, settings)
    if per_call == "sample" and settings.limit and len(pending) == settings.limit:
        # --limit must not split a sample: its responses are judged side by side
        last = pending[-1].sample_id
        seen = {p.response_id for p in pending}
        pending += [
            p
            for p in store.pending_responses(
                scorer.id, retry_failed=settings.retry_failed, sample_ids=[last]
            )
            if p.response_id not in seen
        ]
    if settings.batch:
        covered = _covered_by_batches(store, scorer.id, "judge")
        pending = [p for p in pending if p.response_id not in covered]
    report = ScoreReport(scorer.name, scorer.config_hash, len(pending))
    price = _price(settings)
    count, exact = token_estimator(settings.model)
    plan = plan_calls(pending, template, config, count)
    jobs = [c.job for c in plan]
    report.estimate = _estimate(jobs, JUDGE_TYPICAL_COMPLETION, price, exact)
    if settings.dry_run:
        return report
    _check_budget(settings, price)
    if not jobs and not (settings.batch and store.open_batches(scorer.id)):
        return report
    calls: dict[str, Any] = {c.job.key: {"ids": c.response_ids, "seed": c.seed} for c in plan}

    def on_outcome(key: str, call: Any, outcome: Outcome) -> int:
        scores = judge_scores(JudgeCall(Job(key, [], 0, 0), call["ids"], call["seed"]), outcome)
        store.save_scores(scorer.id, scores)
        report.statuses.update(s.status for s in scores)
        return len(scores)

    total = len(pending) + sum(
        len(c["ids"])
        for row in (store.open_batches(scorer.id) if settings.batch else [])
        for c in row["meta"]["calls"].values()
    )
    settings.progress.start(total)
    try:
        _run(
            _run_jobs(store, scorer.id, settings, price, jobs, calls, "judge", on_outcome, report),
            report,
        )
    finally:
        settings.progress.stop()
    return report


def run_reference(
    store: Store,
    settings: ScoreSettings,
    *,
    source: str = "llm",
    similarity: str = "embedding",
    embed_model: str | None = None,
    max_tokens: int = 1024,
    embedder_factory: Callable[[str | None], Any] | None = None,
) -> ScoreReport:
    """Score pending responses by similarity to their sample's reference answer."""
    from auditor.scorers.embed import DEFAULT_MODEL
    from auditor.scorers.reference import (
        generation_jobs,
        generator_hash,
        reference_config,
        similarity_scores,
    )

    embed_name = (embed_model or DEFAULT_MODEL) if similarity == "embedding" else None
    config = reference_config(
        source,
        similarity,
        model=settings.model if source == "llm" else None,
        embed_model=embed_name,
        max_tokens=max_tokens,
    )
    name = f"reference:{similarity}:" + (settings.model if source == "llm" else "dataset")
    scorer = store.scorer(name, "reference", config)
    pending = _pick(store, scorer.id, settings)
    report = ScoreReport(scorer.name, scorer.config_hash, len(pending))
    sample_ids = list(dict.fromkeys(p.sample_id for p in pending))
    refs: dict[int, str] = {}
    ref_errors: dict[int, str] = {}
    price = _price(settings)
    count, exact = token_estimator(settings.model)
    if source == "dataset":
        for p in pending:
            if p.reference and p.reference.strip():
                refs[p.sample_id] = p.reference
            else:
                ref_errors[p.sample_id] = (
                    "this sample has no reference answer in the data (use --reference llm)"
                )
        report.estimate = _estimate([], REFERENCE_TYPICAL_COMPLETION, price, exact)
    else:
        gh = generator_hash(config["generator"])
        refs = store.reference_answers(gh, sample_ids)
        missing = [sid for sid in sample_ids if sid not in refs]
        if settings.batch:
            covered = _covered_by_batches(store, scorer.id, "reference")
            missing = [sid for sid in missing if sid not in covered]
        jobs = generation_jobs(store.sample_conversations(missing), max_tokens, count)
        report.estimate = _estimate(jobs, REFERENCE_TYPICAL_COMPLETION, price, exact)
        if settings.dry_run:
            return report
        _check_budget(settings, price)
        if jobs or (settings.batch and store.open_batches(scorer.id)):
            calls: dict[str, Any] = {job.key: int(job.key[4:]) for job in jobs}

            def on_outcome(key: str, sample_id: Any, outcome: Outcome) -> int:
                text = (outcome.content or "").strip()
                status = "ok" if text else "failed"
                error = outcome.error or (None if text else "the model returned an empty answer")
                store.save_reference_answer(
                    gh,
                    int(sample_id),
                    text=text or None,
                    status=status,
                    raw=outcome.content,
                    error=error,
                    prompt_tokens=outcome.prompt_tokens,
                    completion_tokens=outcome.completion_tokens,
                    cost=outcome.cost,
                )
                if text:
                    refs[int(sample_id)] = text
                    report.references_generated += 1
                else:
                    ref_errors[int(sample_id)] = f"no reference answer: {error}"
                    report.references_failed += 1
                return 1

            settings.progress.start(len(jobs))
            try:
                _run(
                    _run_jobs(
                        store, scorer.id, settings, price, jobs, calls, "reference", on_outcome,
                        report,
                    ),
                    report,
                )  # fmt: skip
            finally:
                settings.progress.stop()
            if report.interrupted:
                return report
    if settings.dry_run:
        return report
    embedder = None
    if similarity == "embedding" and any(p.sample_id in refs for p in pending):
        if embedder_factory is None:
            from auditor.scorers.embed import Embedder

            embedder_factory = Embedder
        embedder = embedder_factory(embed_model)
    settings.progress.start(len(pending))
    try:
        step = 64
        for start in range(0, len(pending), step):
            chunk = pending[start : start + step]
            pairs = [(p, refs[p.sample_id]) for p in chunk if p.sample_id in refs]
            scores = similarity_scores(pairs, similarity, embedder) if pairs else []
            # a sample with no reference in the data is not a failure a retry could mend:
            # it is stored as such (and so stays off this scorer's map, counted there)
            missing_status = "no_reference" if source == "dataset" else "failed"
            scores += [
                ScoreIn(
                    p.response_id,
                    None,
                    missing_status,
                    error=ref_errors.get(p.sample_id, "no reference answer yet"),
                )
                for p in chunk
                if p.sample_id not in refs
            ]
            store.save_scores(scorer.id, scores)
            report.statuses.update(s.status for s in scores)
            settings.progress.advance(len(chunk), report.stats)
    except KeyboardInterrupt:
        report.interrupted = True
    finally:
        settings.progress.stop()
    return report


__all__ = [
    "BudgetError",
    "EndpointError",
    "Estimate",
    "ScoreReport",
    "ScoreSettings",
    "run_judge",
    "run_reference",
]
