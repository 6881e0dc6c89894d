"""Calls to any OpenAI-compatible endpoint: pacing to rpm/tpm, retries, timeouts, a budget.

The `openai` package's ``AsyncOpenAI`` does the HTTP; its own retries are off
(``max_retries=0``) so that one place decides: a 429 pauses every worker for the
server's ``retry-after-ms`` / ``retry-after``; 5xx, timeouts and dropped connections
back off exponentially with jitter; other 4xx fail that one request.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from auditor.scorers.cost import Price


class EndpointError(Exception):
    """A problem that stops the whole run (no key, wrong model, refused credentials)."""


@dataclass(slots=True)
class EndpointOptions:
    """How to reach and pace the endpoint; none of it changes a score, so none is hashed."""

    base_url: str | None = None
    concurrency: int = 8
    rpm: float | None = None
    tpm: float | None = None
    timeout: float = 60.0
    max_attempts: int = 6
    backoff_base: float = field(
        default_factory=lambda: float(os.environ.get("AUDITOR_BACKOFF_BASE", "1.0"))
    )
    backoff_max: float = 60.0


def make_client(options: EndpointOptions) -> Any:
    """An ``AsyncOpenAI`` client from ``OPENAI_API_KEY`` / ``OPENAI_BASE_URL`` or --base-url."""
    from openai import AsyncOpenAI

    base_url = options.base_url or os.environ.get("OPENAI_BASE_URL") or None
    key = os.environ.get("OPENAI_API_KEY")
    if not key:
        if base_url is None:
            raise EndpointError(
                "OPENAI_API_KEY is not set: export it, or point --base-url (or OPENAI_BASE_URL)"
                " at a local server such as vLLM, Ollama or llama.cpp"
            )
        key = "not-needed"  # local servers accept any key; the header must still be present
    return AsyncOpenAI(api_key=key, base_url=base_url, timeout=options.timeout, max_retries=0)


class RateLimiter:
    """Paces request starts to ``rpm`` and estimated tokens to ``tpm``; a 429 pauses everyone.

    It also learns the server's rate: a 429 cuts the pace to 80 % of the recent start rate
    (once a second, so a burst of 429s counts once) and each success raises it a little
    (additive increase, multiplicative decrease), so a run without --rpm settles just under
    the server's limit instead of hammering it.
    """

    def __init__(
        self,
        rpm: float | None = None,
        tpm: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.interval = 60.0 / rpm if rpm else 0.0
        self.tpm = tpm
        # a token bucket holding ten seconds of the tpm allowance: smooth, never a minute's burst
        self.capacity = tpm / 6.0 if tpm else 0.0
        self.tokens = self.capacity
        self.clock = clock
        self.next_start = 0.0
        self.paused_until = 0.0
        self.refilled_at = clock()
        self.learned: float | None = None  # requests per second the server seems to allow
        self._cut_at = -1e9
        self._starts: deque[float] = deque()
        self._lock = asyncio.Lock()

    def rate_limited(self, seconds: float, in_flight: int = 2) -> None:
        """The server answered 429: pause everyone, and slow the learned pace down.

        With one request in flight the client cannot be the one sending too fast, so the
        pause alone answers it.
        """
        self.pause(seconds)
        now = self.clock()
        if in_flight <= 1 or now - self._cut_at < 1.0:
            return
        self._cut_at = now
        recent = sum(1 for t in self._starts if now - t <= 1.0)
        base = self.learned if self.learned is not None else max(1.0, float(recent))
        self.learned = max(0.2, base * 0.8)

    def succeeded(self) -> None:
        """A request went through: creep the learned pace back up."""
        if self.learned is not None:
            self.learned += max(0.02, self.learned * 0.01)

    def pause(self, seconds: float) -> None:
        """Hold every request for ``seconds`` (the server said it is over its limit)."""
        self.paused_until = max(self.paused_until, self.clock() + seconds)

    def _refill(self, now: float) -> None:
        if self.tpm:
            self.tokens = min(
                self.capacity, self.tokens + (now - self.refilled_at) * self.tpm / 60.0
            )
        self.refilled_at = now

    async def acquire(self, tokens: int = 0) -> None:
        """Wait until a request of about ``tokens`` tokens may start."""
        async with self._lock:
            while True:
                now = self.clock()
                self._refill(now)
                wait = max(self.paused_until - now, self.next_start - now, 0.0)
                if self.tpm and wait <= 0:
                    # a request bigger than the bucket goes once the bucket is full
                    need = min(float(tokens), self.capacity)
                    if self.tokens < need:
                        wait = (need - self.tokens) * 60.0 / self.tpm
                if wait <= 0:
                    break
                await asyncio.sleep(wait)
            interval = self.interval
            if self.learned is not None:
                interval = max(interval, 1.0 / self.learned)
            # a wake-up that came a little late keeps the schedule (no drift); a long idle
            # spell does not bank a burst
            late = now - self.next_start
            self.next_start = (self.next_start if 0 < late < interval else now) + interval
            self._starts.append(now)
            while self._starts and now - self._starts[0] > 2.0:
                self._starts.popleft()
            if self.tpm:
                self.tokens -= tokens


@dataclass(slots=True)
class Job:
    """One chat-completion request and what it is for."""

    key: str
    messages: list[dict[str, str]]
    max_tokens: int
    est_prompt_tokens: int
    params: dict[str, Any] = field(default_factory=dict)
    units: int = 1
    """How many responses (or reference answers) the request serves."""

    def body(self, model: str) -> dict[str, Any]:
        """The request body (also a Batch API line's body)."""
        return {
            "model": model,
            "messages": self.messages,
            "max_tokens": self.max_tokens,
            **self.params,
        }


@dataclass(slots=True)
class Outcome:
    """What came back for a job: the assistant's text and usage, or an error."""

    content: str | None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0
    attempts: int = 1
    error: str | None = None


@dataclass(slots=True)
class RunStats:
    """Counters of one run, shown in the progress bar and the summary."""

    requests: int = 0
    retries: int = 0
    rate_limited: int = 0
    timeouts: int = 0
    server_errors: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0
    jobs_done: int = 0
    jobs_skipped: int = 0
    stopped_by_budget: bool = False


class Progress:
    """Receives progress; the command shows it as a rich bar (see auditor.scorers.progress)."""

    def start(self, total: int) -> None:
        """Announce ``total`` units of work."""

    def advance(self, n: int, stats: RunStats) -> None:
        """``n`` more units are done."""

    def stop(self) -> None:
        """The run ended."""


def retry_after(headers: Any) -> float | None:
    """Seconds the server asked us to wait: ``retry-after-ms``, else ``retry-after`` (seconds)."""
    if headers is None:
        return None
    for name, divisor in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            seconds = float(value) / divisor
        except ValueError:
            continue
        if seconds >= 0:
            return min(seconds, 600.0)
    return None


class Runner:
    """Runs jobs with capped concurrency, pacing, retries and a budget; hands each outcome on."""

    def __init__(
        self,
        client: Any,
        model: str,
        options: EndpointOptions,
        price: Price,
        *,
        budget: float | None = None,
        progress: Progress | None = None,
    ) -> None:
        self.client = client
        self.model = model
        self.options = options
        self.price = price
        self.budget = budget
        self.progress = progress or Progress()
        self.limiter = RateLimiter(options.rpm, options.tpm)
        self.stats = RunStats()
        self._reserved = 0.0
        self._stop = False
        self._in_flight = 0

    def _backoff(self, attempt: int) -> float:
        # full jitter: spreads retries of many workers instead of synchronising them
        ceiling = min(self.options.backoff_max, self.options.backoff_base * 2 ** (attempt - 1))
        return random.uniform(ceiling / 2, ceiling)

    def _reserve(self, job: Job) -> float | None:
        """Set aside the most this job can cost; None when that would pass the budget."""
        worst = self.price.cost(job.est_prompt_tokens, job.max_tokens)
        if self.budget is not None and self.stats.cost + self._reserved + worst > self.budget:
            return None
        self._reserved += worst
        return worst

    async def _send(self, job: Job) -> Any:
        self._in_flight += 1
        try:
            return await self.client.chat.completions.create(**job.body(self.model))
        finally:
            self._in_flight -= 1

    async def call(self, job: Job) -> Outcome:
        """One job, retried until it succeeds, fails for good or runs out of attempts."""
        from openai import (
            APIConnectionError,
            APIResponseValidationError,
            APIStatusError,
            APITimeoutError,
        )

        last = "no attempt made"
        attempt = 0
        # a 429 means "not now", not "failed": it gets a larger allowance of its own
        throttled, max_throttled = 0, max(30, 5 * self.options.max_attempts)
        while attempt < self.options.max_attempts:
            attempt += 1
            await self.limiter.acquire(job.est_prompt_tokens + job.max_tokens)
            self.stats.requests += 1
            try:
                completion = await self._send(job)
            except APITimeoutError:
                self.stats.timeouts += 1
                last = f"timed out after {self.options.timeout:g} s"
                delay = self._backoff(attempt)
            except APIStatusError as e:
                status = e.status_code
                if status == 429:
                    if getattr(e, "code", None) == "insufficient_quota":
                        raise EndpointError(
                            f"the endpoint refused: out of quota ({e.message})"
                        ) from None
                    self.stats.rate_limited += 1
                    throttled += 1
                    delay = retry_after(e.response.headers) or self._backoff(throttled)
                    # counting this request, which has just come back
                    self.limiter.rate_limited(delay, self._in_flight + 1)
                    last = f"rate limited (429), asked to wait {delay:.2f} s"
                    if throttled < max_throttled:
                        attempt -= 1
                elif status >= 500:
                    self.stats.server_errors += 1
                    last = f"server error {status}: {_short(e.message)}"
                    delay = retry_after(e.response.headers) or self._backoff(attempt)
                elif status in (401, 403):
                    raise EndpointError(
                        f"the endpoint refused the credentials ({status}): check OPENAI_API_KEY"
                    ) from None
                elif status == 404:
                    raise EndpointError(
                        f"not found (404) at the endpoint: is the model {self.model!r} served"
                        f" there, and does --base-url end in /v1? ({_short(e.message)})"
                    ) from None
                elif status == 400 and "response_format" in str(e.message):
                    raise EndpointError(
                        "the endpoint does not support structured output (response_format):"
                        f" run again with --no-structured ({_short(e.message)})"
                    ) from None
                else:
                    return Outcome(None, attempts=attempt, error=f"{status}: {_short(e.message)}")
            except APIResponseValidationError as e:
                last = f"malformed response body: {_short(str(e))}"
                delay = self._backoff(attempt)
            except APIConnectionError as e:
                last = f"connection error: {_short(str(e))}"
                delay = self._backoff(attempt)
            except ValueError as e:  # a body that is not JSON at all (a proxy's HTML page)
                last = f"malformed response body: {_short(str(e))}"
                delay = self._backoff(attempt)
            else:
                outcome = self._outcome(job, completion, attempt + throttled)
                if outcome is not None:
                    self.limiter.succeeded()
                    return outcome
                last = "malformed response body: no choices"
                delay = self._backoff(attempt)
            if attempt < self.options.max_attempts:
                self.stats.retries += 1
                await asyncio.sleep(delay)
        return Outcome(None, attempts=attempt, error=f"gave up after {attempt} attempts: {last}")

    def _outcome(self, job: Job, completion: Any, attempt: int) -> Outcome | None:
        try:
            content = completion.choices[0].message.content
        except (AttributeError, IndexError, TypeError):
            return None
        usage = getattr(completion, "usage", None)
        prompt = getattr(usage, "prompt_tokens", None) or job.est_prompt_tokens
        produced = getattr(usage, "completion_tokens", None)
        if produced is None:
            produced = max(1, len(content or "") // 4)
        cost = self.price.cost(prompt, produced)
        self.stats.prompt_tokens += prompt
        self.stats.completion_tokens += produced
        self.stats.cost += cost
        return Outcome(content if isinstance(content, str) else "", prompt, produced, cost, attempt)

    async def run(self, jobs: list[Job], handle: Callable[[Job, Outcome], int]) -> RunStats:
        """Run ``jobs``; ``handle`` stores each outcome as it arrives and returns units done."""
        queue: asyncio.Queue[Job] = asyncio.Queue()
        for job in jobs:
            queue.put_nowait(job)

        async def worker() -> None:
            while not self._stop:
                try:
                    job = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                reserved = self._reserve(job)
                if reserved is None:
                    self.stats.stopped_by_budget = True
                    self._stop = True
                    return
                try:
                    outcome = await self.call(job)
                finally:
                    self._reserved -= reserved
                units = handle(job, outcome)
                self.stats.jobs_done += 1
                self.progress.advance(units, self.stats)

        workers = [asyncio.create_task(worker()) for _ in range(max(1, self.options.concurrency))]
        try:
            await asyncio.gather(*workers)
        finally:
            for w in workers:
                w.cancel()
            self.stats.jobs_skipped = queue.qsize()
        return self.stats


def _short(text: str, limit: int = 200) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
