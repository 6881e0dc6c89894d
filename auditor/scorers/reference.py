"""The reference scorer (the paper's main one): similarity of each response to a reference.

The reference answer is written once per sample by an LLM under the helpfulness principle
and stored, or taken from the dataset (e.g. alpacaeval's ``reference.response``). The score
is the cosine similarity of sentence embeddings (chunked and pooled, never truncated), or
ROUGE-L F1 as a dependency-free variant.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from importlib import resources
from typing import TYPE_CHECKING, Any

from auditor.model import ScoreIn
from auditor.scorers.llm import Job

if TYPE_CHECKING:
    from auditor.scorers.embed import Embedder
    from store.store import PendingResponse

REFERENCE_TEMPLATE = "reference_v1"
_WORD = re.compile(r"\w+", re.UNICODE)


def reference_prompt() -> str:
    """The bundled system prompt for reference answers (comment lines removed)."""
    text = (
        resources.files("auditor.templates")
        .joinpath(f"{REFERENCE_TEMPLATE}.txt")
        .read_text(encoding="utf-8")
    )
    return "\n".join(line for line in text.splitlines() if not line.startswith("#")).strip()


def generator_config(model: str, max_tokens: int = 1024) -> dict[str, Any]:
    """What determines a generated reference answer."""
    prompt = reference_prompt()
    return {
        "model": model,
        "template": REFERENCE_TEMPLATE,
        "template_sha": hashlib.sha256(prompt.encode()).hexdigest()[:12],
        "temperature": 0,
        "max_tokens": max_tokens,
    }


def generator_hash(config: dict[str, Any]) -> str:
    """The key of a generator's stored reference answers."""
    canonical = json.dumps(config, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def reference_config(
    source: str,
    similarity: str,
    *,
    model: str | None = None,
    embed_model: str | None = None,
    max_tokens: int = 1024,
) -> dict[str, Any]:
    """Everything that changes a reference score, hashed into its scorer id."""
    config: dict[str, Any] = {"kind": "reference", "source": source, "similarity": similarity}
    if source == "llm":
        assert model is not None
        config["generator"] = generator_config(model, max_tokens)
    if similarity == "embedding":
        config["embed_model"] = embed_model
        config["long_text"] = "chunk-mean-pool"
    return config


def generation_jobs(
    samples: dict[int, list[dict[str, str]]], max_tokens: int, count_tokens: Any
) -> list[Job]:
    """One request per sample: the helpfulness principle, then the sample's conversation."""
    from auditor.scorers.cost import message_tokens
    from auditor.scorers.judge import clean

    system = reference_prompt()
    jobs = []
    for sample_id, conversation in samples.items():
        turns = [
            {"role": t.get("role", "user"), "content": clean(t.get("content", ""))}
            for t in conversation
            if t.get("role") in ("user", "assistant", "system")
        ]
        # a conversation ending in an assistant turn is answered after it, as its next turn
        messages = [{"role": "system", "content": system}, *turns]
        jobs.append(
            Job(
                f"ref-{sample_id}",
                messages,
                max_tokens,
                message_tokens(messages, count_tokens),
                {"temperature": 0},
            )
        )
    return jobs


def words(text: str) -> list[str]:
    """Lower-cased word tokens, as ROUGE compares them."""
    return _WORD.findall(text.lower())


def lcs_length(a: Sequence[str], b: Sequence[str]) -> int:
    """Length of the longest common subsequence, bit-parallel (Hyyrö 2004): O(|a|·|b|/64)."""
    if not a or not b:
        return 0
    if len(a) < len(b):
        a, b = b, a
    masks: dict[str, int] = {}
    for i, token in enumerate(b):
        masks[token] = masks.get(token, 0) | (1 << i)
    full = (1 << len(b)) - 1
    v = full
    for token in a:
        u = v & masks.get(token, 0)
        v = ((v + u) | (v - u)) & full
    return len(b) - v.bit_count()


def rouge_l(candidate: str, reference: str) -> float:
    """ROUGE-L F1 between a response and the reference, over lower-cased word tokens."""
    c, r = words(candidate), words(reference)
    lcs = lcs_length(c, r)
    if lcs == 0:
        return 0.0
    precision, recall = lcs / len(c), lcs / len(r)
    return 2 * precision * recall / (precision + recall)


def similarity_scores(
    pairs: Sequence[tuple[PendingResponse, str]],
    similarity: str,
    embedder: Embedder | None = None,
) -> list[ScoreIn]:
    """Scores of responses against their sample's reference answer."""
    if similarity == "rougeL":
        return [ScoreIn(p.response_id, rouge_l(p.text, ref), "ok") for p, ref in pairs]
    assert embedder is not None
    refs = list(dict.fromkeys(ref for _, ref in pairs))
    ref_vecs, ref_chunks = embedder.embed(refs)
    resp_vecs, resp_chunks = embedder.embed([p.text for p, _ in pairs])
    where = {ref: i for i, ref in enumerate(refs)}
    out = []
    for k, (p, ref) in enumerate(pairs):
        j = where[ref]
        value = float(resp_vecs[k] @ ref_vecs[j])
        raw = json.dumps({"chunks": resp_chunks[k], "reference_chunks": ref_chunks[j]})
        out.append(ScoreIn(p.response_id, value, "ok", raw=raw))
    return out
