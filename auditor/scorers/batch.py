"""The OpenAI Batch API (half price): write the requests as JSONL, upload, create, poll, store.

Each batch's id and what every request in it is for are stored before waiting, so a later
``auditor score --batch`` collects the running batch instead of submitting (and paying) again.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from auditor.scorers.cost import Price
from auditor.scorers.llm import Job, Outcome

if TYPE_CHECKING:
    from store import Store

TERMINAL = ("completed", "failed", "expired", "cancelled")


def batch_lines(jobs: list[Job], model: str) -> bytes:
    """The request file: one JSON line per request, keyed by ``custom_id``."""
    lines = [
        json.dumps(
            {
                "custom_id": job.key,
                "method": "POST",
                "url": "/v1/chat/completions",
                "body": job.body(model),
            },
            ensure_ascii=False,
        )
        for job in jobs
    ]
    return ("\n".join(lines) + "\n").encode()


async def submit(
    store: Store,
    client: Any,
    scorer_id: int,
    model: str,
    jobs: list[Job],
    calls: dict[str, Any],
    kind: str,
) -> str:
    """Upload ``jobs`` as one batch and remember it; ``calls`` maps custom_id to its purpose."""
    uploaded = await client.files.create(
        file=("auditor-requests.jsonl", batch_lines(jobs, model)), purpose="batch"
    )
    batch = await client.batches.create(
        input_file_id=uploaded.id,
        endpoint="/v1/chat/completions",
        completion_window="24h",
        metadata={"tool": "alignment-auditor", "kind": kind},
    )
    store.add_batch(
        batch.id,
        scorer_id,
        status=batch.status,
        input_file_id=uploaded.id,
        request_count=len(jobs),
        meta={"kind": kind, "calls": calls},
    )
    return str(batch.id)


def _outcome(line: dict[str, Any], price: Price) -> Outcome:
    response = line.get("response") or {}
    if line.get("error") or response.get("status_code") != 200:
        error = line.get("error") or (response.get("body") or {}).get("error") or response
        return Outcome(None, error=f"batch request failed: {json.dumps(error)[:300]}")
    body = response.get("body") or {}
    try:
        content = body["choices"][0]["message"]["content"]
    except (KeyError, IndexError, TypeError):
        return Outcome(None, error="batch result has no choices")
    usage = body.get("usage") or {}
    prompt = int(usage.get("prompt_tokens") or 0)
    produced = int(usage.get("completion_tokens") or 0)
    return Outcome(
        content if isinstance(content, str) else "",
        prompt,
        produced,
        price.cost(prompt, produced),
    )


async def collect(
    store: Store,
    client: Any,
    row: dict[str, Any],
    price: Price,
    on_outcome: Callable[[str, Any, Outcome], None],
    *,
    poll_interval: float = 30.0,
    wait: bool = True,
    say: Callable[[str], None] = lambda _: None,
) -> str:
    """Wait for a stored batch to finish, then hand every request's outcome on; its status.

    With ``wait=False`` a batch still running is left for a later run.
    """
    batch_id = row["id"]
    status = row["status"]
    while True:
        batch = await client.batches.retrieve(batch_id)
        if batch.status != status:
            status = batch.status
            store.update_batch(batch_id, status=status)
            say(f"batch {batch_id}: {status}")
        if status in TERMINAL:
            break
        if not wait:
            return str(status)
        await asyncio.sleep(poll_interval)
    calls: dict[str, Any] = row["meta"]["calls"]
    seen: set[str] = set()
    for file_id in (batch.output_file_id, batch.error_file_id):
        if not file_id:
            continue
        content = await client.files.content(file_id)
        for text in content.text.splitlines():
            if not text.strip():
                continue
            try:
                line = json.loads(text)
            except json.JSONDecodeError:
                continue
            custom_id = line.get("custom_id")
            if custom_id not in calls or custom_id in seen:
                continue
            seen.add(custom_id)
            on_outcome(custom_id, calls[custom_id], _outcome(line, price))
    for custom_id, call in calls.items():
        if custom_id not in seen:
            on_outcome(custom_id, call, Outcome(None, error=f"no result: the batch ended {status}"))
    store.update_batch(
        batch_id,
        status="stored",
        output_file_id=batch.output_file_id,
        error_file_id=batch.error_file_id,
    )
    return str(status)
