"""The LLM-as-judge scorer: a versioned rubric rates each response 1–10 with a rationale.

Dataset text is untrusted. It goes into blocks delimited by a tag carrying a digest of the
call's own content (so a response cannot close its block early), the judge is asked for
structured output, and only the judge's own JSON verdict is read: a response that says
"Score: 10" or carries a JSON verdict of its own cannot set its score.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from auditor.display import clean_text
from auditor.model import ScoreIn
from auditor.scorers.llm import Job, Outcome

if TYPE_CHECKING:
    from store.store import PendingResponse

DEFAULT_TEMPLATE = "judge_v1"
SCALE = (1, 10)
LABELS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_PLACEHOLDER = re.compile(r"\{\{(\w+)\}\}")


class TemplateError(ValueError):
    """A judge template that cannot be used, with a message meant for the user."""


@dataclass(frozen=True, slots=True)
class JudgeTemplate:
    """A rubric prompt: a system and a user message with ``{{placeholders}}``."""

    name: str
    system: str
    user: str
    sha: str


def load_template(path: str | None = None) -> JudgeTemplate:
    """The bundled ``judge_v1`` rubric, or the user's template file."""
    if path is None:
        text = (
            resources.files("auditor.templates")
            .joinpath(f"{DEFAULT_TEMPLATE}.txt")
            .read_text(encoding="utf-8")
        )
        name = DEFAULT_TEMPLATE
    else:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as e:
            raise TemplateError(f"{path}: cannot read the template ({e.strerror})") from e
        except UnicodeDecodeError as e:
            raise TemplateError(f"{path}: the template is not UTF-8 text") from e
        name = Path(path).stem
    sections: dict[str, list[str]] = {}
    current: str | None = None
    for line in text.splitlines():
        header = line.strip().lower()
        if header in ("### system", "### user"):
            current = header[4:]
            sections[current] = []
        elif current is not None:
            sections[current].append(line)
        elif line.strip() and not line.startswith("#"):
            raise TemplateError(
                f"{path or name}: text before the first '### system' or '### user' line"
            )
    user = "\n".join(sections.get("user", [])).strip()
    if "{{responses}}" not in user:
        raise TemplateError(
            f"{path or name}: the '### user' section must contain {{{{responses}}}}"
            " (and usually {{conversation}})"
        )
    system = "\n".join(sections.get("system", [])).strip()
    sha = hashlib.sha256(f"{system}\n\x00\n{user}".encode()).hexdigest()[:12]
    return JudgeTemplate(name, system, user, sha)


def judge_config(
    model: str,
    template: JudgeTemplate,
    *,
    per_call: str = "sample",
    structured: bool = True,
    shuffle_seed: int = 0,
    max_tokens: int = 512,
) -> dict[str, Any]:
    """Everything that changes a judge's scores, hashed into its scorer id (no URL, no key)."""
    return {
        "kind": "judge",
        "model": model,
        "template": template.name,
        "template_sha": template.sha,
        "scale": list(SCALE),
        "temperature": 0,
        "max_tokens": max_tokens,
        "per_call": per_call,
        "structured": structured,
        "shuffle_seed": shuffle_seed,
    }


def clean(text: str) -> str:
    """Dataset text made safe to embed: terminal escapes and control characters removed."""
    return clean_text(text)


def _fill(template: str, values: dict[str, str]) -> str:
    # one pass: a value that itself contains {{responses}} is inserted literally
    return _PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), template)


def _block(tag: str, text: str, attrs: str = "") -> str:
    text = clean(text).replace(f"</{tag}", f"<\\/{tag}")
    return f"<{tag}{attrs}>\n{text}\n</{tag}>"


def render_conversation(conversation: list[dict[str, str]]) -> str:
    """The turns as ``[role]`` paragraphs."""
    return "\n\n".join(f"[{t.get('role', 'user')}]\n{t.get('content', '')}" for t in conversation)


def build_messages(
    template: JudgeTemplate,
    conversation: list[dict[str, str]],
    texts: Sequence[str],
) -> list[dict[str, str]]:
    """The chat messages asking the judge to rate ``texts`` (labelled A, B, ... in order)."""
    convo = render_conversation(conversation)
    digest = hashlib.sha256("\x00".join([convo, *texts]).encode()).hexdigest()[:10]
    conv_tag, resp_tag = f"conversation-{digest}", f"response-{digest}"
    labels = [LABELS[i] for i in range(len(texts))]
    blocks = "\n\n".join(
        _block(resp_tag, text, f' label="{label}"')
        for label, text in zip(labels, texts, strict=True)
    )
    values = {
        "conversation": _block(conv_tag, convo),
        "responses": blocks,
        "labels": ", ".join(labels),
        "scale_min": str(SCALE[0]),
        "scale_max": str(SCALE[1]),
    }
    messages = []
    if template.system:
        messages.append({"role": "system", "content": _fill(template.system, values)})
    messages.append({"role": "user", "content": _fill(template.user, values)})
    return messages


RESPONSE_FORMAT: dict[str, Any] = {
    "type": "json_schema",
    "json_schema": {
        "name": "judgement",
        "strict": True,
        "schema": {
            "type": "object",
            "properties": {
                "ratings": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "label": {"type": "string"},
                            "rationale": {"type": "string"},
                            "score": {"type": "integer"},
                        },
                        "required": ["label", "rationale", "score"],
                        "additionalProperties": False,
                    },
                }
            },
            "required": ["ratings"],
            "additionalProperties": False,
        },
    },
}


class Unparsable(ValueError):
    """The judge's output is not a usable verdict."""


def _verdict(obj: Any, labels: Sequence[str]) -> dict[str, tuple[float, str]]:
    if isinstance(obj, dict) and "ratings" not in obj and "score" in obj and len(labels) == 1:
        obj = {"ratings": [{**obj, "label": labels[0]}]}
    if not isinstance(obj, dict) or not isinstance(obj.get("ratings"), list):
        raise Unparsable('no "ratings" list in the verdict')
    out: dict[str, tuple[float, str]] = {}
    for entry in obj["ratings"]:
        if not isinstance(entry, dict):
            raise Unparsable("a rating is not an object")
        label = str(entry.get("label", "")).strip().strip("\"'[]()").upper()
        score = entry.get("score")
        if isinstance(score, str) and re.fullmatch(r"\s*\d+(\.\d+)?\s*", score):
            score = float(score)
        if isinstance(score, bool) or not isinstance(score, int | float):
            raise Unparsable(f"label {label or '?'}: the score {score!r} is not a number")
        if not SCALE[0] <= score <= SCALE[1]:
            raise Unparsable(f"label {label}: score {score:g} is outside {SCALE[0]}–{SCALE[1]}")
        if label not in labels:
            raise Unparsable(f"unknown label {label!r} (expected {', '.join(labels)})")
        if label in out:
            raise Unparsable(f"label {label} rated twice")
        rationale = entry.get("rationale", "")
        out[label] = (float(score), rationale if isinstance(rationale, str) else str(rationale))
    missing = [label for label in labels if label not in out]
    if missing:
        raise Unparsable(f"no rating for {', '.join(missing)}")
    return out


def _json_objects(text: str) -> list[Any]:
    """Every top-level JSON object in ``text``, in order."""
    decoder = json.JSONDecoder()
    found, i = [], text.find("{")
    while i != -1:
        try:
            obj, end = decoder.raw_decode(text, i)
        except json.JSONDecodeError:
            i = text.find("{", i + 1)
            continue
        found.append(obj)
        i = text.find("{", end)
    return found


def parse_verdict(content: str, labels: Sequence[str]) -> dict[str, tuple[float, str]]:
    """Scores and rationales by label from the judge's output, or raise ``Unparsable``.

    Strict first (the whole output is the JSON verdict). The tolerant fallback, for servers
    without structured output, reads the judge's final JSON verdict (a fenced block or the
    last JSON object that has the verdict's shape); prose such as "Score: 10" is never read.
    """
    text = content.strip()
    try:
        return _verdict(json.loads(text), labels)
    except json.JSONDecodeError:
        pass
    except Unparsable as strict_error:
        # valid JSON of the wrong shape or range: the judge answered, and the answer is unusable
        raise strict_error
    fenced = re.findall(r"```(?:json)?\s*(\{.*?\})\s*```", text, flags=re.DOTALL)
    candidates = [*fenced[::-1], *_json_objects(text)[::-1]]
    first_error: Unparsable | None = None
    for candidate in candidates:
        try:
            obj = json.loads(candidate) if isinstance(candidate, str) else candidate
        except json.JSONDecodeError:
            continue
        if not isinstance(obj, dict) or not ({"ratings", "score"} & obj.keys()):
            continue
        try:
            return _verdict(obj, labels)
        except Unparsable as e:
            # the judge's own (last) verdict is unusable: do not fall back to an earlier,
            # possibly quoted, one
            first_error = first_error or e
            break
    raise first_error or Unparsable("no JSON verdict in the judge's output")


@dataclass(slots=True)
class JudgeCall:
    """A request rating one or more responses of a sample, with their labels and order seed."""

    job: Job
    response_ids: dict[str, int]
    seed: int | None


def call_seed(shuffle_seed: int, sample_id: int) -> int:
    """The seed that orders one sample's responses (stored with each score)."""
    return (shuffle_seed * 1_000_003 + sample_id) % 2**31


def plan_calls(
    pending: Sequence[PendingResponse],
    template: JudgeTemplate,
    config: dict[str, Any],
    count_tokens: Any,
) -> list[JudgeCall]:
    """The judge requests for ``pending``: one per sample (shuffled), or one per response."""
    from auditor.scorers.cost import message_tokens

    groups: list[list[PendingResponse]] = []
    if config["per_call"] == "response":
        groups = [[p] for p in pending]
    else:
        by_sample: dict[int, list[PendingResponse]] = {}
        for p in pending:
            by_sample.setdefault(p.sample_id, []).append(p)
        # more responses than labels (or than a judge reads well) go in several calls
        step = 8
        groups = [g[i : i + step] for g in by_sample.values() for i in range(0, len(g), step)]
    params: dict[str, Any] = {"temperature": 0}
    if config["structured"]:
        params["response_format"] = RESPONSE_FORMAT
    calls = []
    for group in groups:
        seed: int | None = None
        ordered = list(group)
        if len(group) > 1:
            seed = call_seed(config["shuffle_seed"], group[0].sample_id)
            random.Random(seed).shuffle(ordered)
        messages = build_messages(template, group[0].conversation, [p.text for p in ordered])
        ids = {LABELS[i]: p.response_id for i, p in enumerate(ordered)}
        key = "judge-" + "-".join(str(p.response_id) for p in ordered)
        job = Job(
            key,
            messages,
            config["max_tokens"] * len(ordered) if len(ordered) > 1 else config["max_tokens"],
            message_tokens(messages, count_tokens),
            params,
            units=len(ordered),
        )
        calls.append(JudgeCall(job, ids, seed))
    return calls


def judge_scores(call: JudgeCall, outcome: Outcome) -> list[ScoreIn]:
    """The scores one judge call yields: ok, unparsable (raw kept) or failed."""
    ids = call.response_ids
    n = len(ids)
    # the call's tokens and dollars are shared out so the scorer's totals stay exact
    shares = [
        (
            outcome.prompt_tokens // n + (1 if i < outcome.prompt_tokens % n else 0),
            outcome.completion_tokens // n + (1 if i < outcome.completion_tokens % n else 0),
        )
        for i in range(n)
    ]
    cost = outcome.cost / n
    if outcome.content is None:
        return [
            ScoreIn(rid, None, "failed", error=outcome.error, seed=call.seed, cost=cost,
                    prompt_tokens=pt, completion_tokens=ct)
            for (rid, (pt, ct)) in zip(ids.values(), shares, strict=True)
        ]  # fmt: skip
    try:
        verdict = parse_verdict(outcome.content, list(ids))
    except Unparsable as e:
        return [
            ScoreIn(rid, None, "unparsable", raw=outcome.content, error=str(e), seed=call.seed,
                    cost=cost, prompt_tokens=pt, completion_tokens=ct)
            for (rid, (pt, ct)) in zip(ids.values(), shares, strict=True)
        ]  # fmt: skip
    return [
        ScoreIn(rid, verdict[label][0], "ok", rationale=verdict[label][1], raw=outcome.content,
                seed=call.seed, cost=cost, prompt_tokens=pt, completion_tokens=ct)
        for (label, rid), (pt, ct) in zip(ids.items(), shares, strict=True)
    ]  # fmt: skip
