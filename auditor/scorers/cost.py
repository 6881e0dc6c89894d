"""Token counts and dollars: a price table the user can override, and token estimates."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

# USD per million tokens (input, output), list prices of the synchronous API. The Batch API
# costs half. Prices change: override with --prices FILE or $AUDITOR_PRICES.
PRICES: dict[str, tuple[float, float]] = {
    "gpt-4o": (2.50, 10.00),
    "gpt-4o-2024-11-20": (2.50, 10.00),
    "gpt-4o-2024-08-06": (2.50, 10.00),
    "gpt-4o-2024-05-13": (5.00, 15.00),
    "gpt-4o-mini": (0.15, 0.60),
    "gpt-4.1": (2.00, 8.00),
    "gpt-4.1-mini": (0.40, 1.60),
    "gpt-4.1-nano": (0.10, 0.40),
    "gpt-4-turbo": (10.00, 30.00),
    "gpt-3.5-turbo": (0.50, 1.50),
    "o3-mini": (1.10, 4.40),
    "o4-mini": (1.10, 4.40),
}

BATCH_DISCOUNT = 0.5


class PriceError(ValueError):
    """A price file that cannot be read, with a message meant for the user."""


@dataclass(frozen=True, slots=True)
class Price:
    """What one model costs, in USD per million tokens; ``known`` is False for a guess of 0."""

    model: str
    input: float
    output: float
    known: bool = True

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        """Dollars for this many tokens."""
        return (prompt_tokens * self.input + completion_tokens * self.output) / 1_000_000

    def batched(self) -> Price:
        """The Batch API price (half)."""
        return Price(
            self.model, self.input * BATCH_DISCOUNT, self.output * BATCH_DISCOUNT, self.known
        )


def load_prices(path: str | os.PathLike[str] | None = None) -> dict[str, tuple[float, float]]:
    """The built-in table updated by a JSON file ``{"model": {"input": x, "output": y}}``.

    The file is ``path``, else ``$AUDITOR_PRICES`` when set. Prices are USD per million tokens.
    """
    table = dict(PRICES)
    source = path or os.environ.get("AUDITOR_PRICES")
    if not source:
        return table
    try:
        data: Any = json.loads(Path(source).read_text(encoding="utf-8"))
    except OSError as e:
        raise PriceError(f"{source}: cannot read the price file ({e.strerror})") from e
    except json.JSONDecodeError as e:
        raise PriceError(f"{source}: line {e.lineno}: not valid JSON ({e.msg})") from e
    if not isinstance(data, dict):
        raise PriceError(
            f'{source}: expected an object {{"model": {{"input": 2.5, "output": 10}}}}'
        )
    for model, entry in data.items():
        ok = (
            isinstance(entry, dict)
            and all(isinstance(entry.get(k), int | float) for k in ("input", "output"))
            and entry["input"] >= 0
            and entry["output"] >= 0
        )
        if not ok:
            raise PriceError(
                f'{source}: model {model!r}: expected {{"input": USD per 1M tokens, '
                f'"output": USD per 1M tokens}}, got {entry!r}'
            )
        table[str(model)] = (float(entry["input"]), float(entry["output"]))
    return table


def price_for(model: str, table: dict[str, tuple[float, float]] | None = None) -> Price:
    """The price of ``model``: an exact entry, else the longest listed prefix, else unknown ($0)."""
    table = PRICES if table is None else table
    if model in table:
        return Price(model, *table[model])
    prefixes = [name for name in table if model.startswith(name + "-")]
    if prefixes:
        return Price(model, *table[max(prefixes, key=len)])
    return Price(model, 0.0, 0.0, known=False)


@lru_cache(maxsize=8)
def _encoding(model: str) -> tuple[Any, bool]:
    """tiktoken's encoding for ``model`` and whether tiktoken knows that model."""
    try:
        import tiktoken
    except ImportError:
        return None, False
    try:
        return tiktoken.encoding_for_model(model), True
    except KeyError:
        pass
    except Exception:  # the encoding file is fetched once from the network; offline it fails
        return None, False
    try:
        return tiktoken.get_encoding("o200k_base"), False
    except Exception:
        return None, False


def token_estimator(model: str) -> tuple[Any, bool]:
    """A function counting tokens in a text for ``model``, and whether the count is exact.

    Exact when tiktoken knows the model and has its encoding; otherwise a model it does not
    know is counted with o200k_base, and without any encoding at about four characters a
    token.
    """
    enc, known = _encoding(model)
    if enc is None:
        # about four characters a token in English; the dry run says it is approximate
        return (lambda text: max(1, len(text) // 4)), False
    return (lambda text: len(enc.encode(text, disallowed_special=()))), known


def message_tokens(messages: list[dict[str, str]], count: Any) -> int:
    """Prompt tokens of a chat request: the texts plus a few tokens of framing per message."""
    return sum(count(m.get("content", "")) + 4 for m in messages) + 3
