"""The progress display of a scoring run: a rich bar on stderr when it is a terminal."""

from __future__ import annotations

import sys
import time
from typing import Any

from auditor.scorers.llm import Progress, RunStats


class BarProgress(Progress):
    """done/total, rate, tokens, dollars and ETA on one line when stderr is a terminal;
    otherwise (a log file, CI) a plain line every ``every`` seconds."""

    def __init__(self, label: str, *, enabled: bool | None = None, every: float = 30.0) -> None:
        self.label = label
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self.every = every
        self._bar: Any = None
        self._task: Any = None
        self.started = time.monotonic()
        self._done = 0
        self._total = 0
        self._said_at = self.started

    def start(self, total: int) -> None:
        """Show the bar for ``total`` responses."""
        self.started = self._said_at = time.monotonic()
        self._done, self._total = 0, total
        if not self.enabled:
            return
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )
        from rich.progress import Progress as RichProgress

        self._bar = RichProgress(
            TextColumn("{task.description}", markup=False),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}", markup=False),
            TextColumn("{task.fields[tokens]}", markup=False),
            TextColumn("{task.fields[dollars]}", markup=False),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            transient=False,
        )
        self._bar.start()
        self._task = self._bar.add_task(
            self.label, total=total, rate="", tokens="0 tok", dollars="$0.0000"
        )

    def advance(self, n: int, stats: RunStats) -> None:
        """Move the bar by ``n`` responses and refresh the counters."""
        self._done += n
        now = time.monotonic()
        elapsed = max(now - self.started, 1e-9)
        if self._bar is None:
            if not self.enabled and now - self._said_at >= self.every:
                self._said_at = now
                print(
                    f"{self.label}: {self._done:,}/{self._total:,},"
                    f" {stats.requests / elapsed * 60:,.0f} req/min,"
                    f" {stats.prompt_tokens + stats.completion_tokens:,} tokens,"
                    f" ${stats.cost:,.4f}",
                    file=sys.stderr,
                    flush=True,
                )
            return
        self._bar.update(
            self._task,
            advance=n,
            rate=f"{stats.requests / elapsed * 60:,.0f} req/min",
            tokens=f"{stats.prompt_tokens + stats.completion_tokens:,} tok",
            dollars=f"${stats.cost:,.4f}",
        )

    def stop(self) -> None:
        """Leave the final state of the bar on screen."""
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
