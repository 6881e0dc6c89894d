"""Preference-data formats: detection from a record and parsing into `SampleIn`.

Every parser takes one decoded record (a dict) and returns the conversation, the
responses and what else the record says (source, reference); it raises `RecordError`
naming the field when the record does not fit.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from auditor.model import Conversation, ResponseIn, Role, SampleIn


class RecordError(Exception):
    """A record that does not fit its format; ``field`` names where."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


Parsed = tuple[Conversation, list[ResponseIn], dict[str, Any]]
"""A parse: the conversation, the responses, extras (source, reference, flags, kind)."""


@dataclass(frozen=True, slots=True)
class Format:
    """One input format: how to recognise a record and how to read it."""

    name: str
    summary: str
    detect: Callable[[dict[str, Any]], bool]
    parse: Callable[[dict[str, Any]], Parsed]


# -- small readers ---------------------------------------------------------------------


def _text(record: dict[str, Any], key: str, where: str | None = None) -> str:
    where = where or key
    if key not in record:
        raise RecordError(where, f"field {where!r} is missing")
    value = record[key]
    if value is None:
        raise RecordError(where, f"field {where!r} is null; a response text was expected")
    if isinstance(value, bool):
        return "true" if value else "false"  # a JSON scalar where text was meant: keep its text
    if isinstance(value, int | float):
        return repr(value)
    if not isinstance(value, str):
        raise RecordError(where, f"field {where!r} is a {type(value).__name__}, not a string")
    return value


def _number(value: Any) -> float | None:
    """A rating as a float; None for missing, "N/A", NaN or non-numeric text."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        f = float(value)
        return None if math.isnan(f) else f
    if isinstance(value, str):
        try:
            f = float(value.strip())
        except ValueError:
            return None
        return None if math.isnan(f) else f
    return None


def _dig(record: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(record, dict):
            return None
        record = record.get(key)
    return record


def _first_number(*values: Any) -> float | None:
    for v in values:
        n = _number(v)
        if n is not None:
            return n
    return None


def _source(record: dict[str, Any]) -> str | None:
    v = record.get("source")
    if isinstance(v, str) and v:
        return v
    for key in ("metadata", "extra_metadata"):
        nested = record.get(key)
        if isinstance(nested, dict):
            v = nested.get("source")
            if isinstance(v, str) and v:
                return v
    v = record.get("dataset")
    return v if isinstance(v, str) and v else None


_ROLE_NAMES = {
    "human": "user",
    "user": "user",
    "gpt": "assistant",
    "assistant": "assistant",
    "bot": "assistant",
    "model": "assistant",
    "system": "system",
}


def _messages(value: Any, where: str) -> Conversation:
    """A list of ``{role, content}`` (or ShareGPT ``{from, value}``) turns."""
    if not isinstance(value, list):
        raise RecordError(where, f"field {where!r} should be a list of messages")
    turns: Conversation = []
    for i, m in enumerate(value):
        if not isinstance(m, dict):
            raise RecordError(f"{where}.{i}", f"message {where}.{i} is not an object")
        role = m.get("role", m.get("from"))
        content = m.get("content", m.get("value"))
        if content is None:
            raise RecordError(f"{where}.{i}.content", f"message {where}.{i} has no content")
        if isinstance(content, list):  # multimodal parts: keep the text ones
            content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
        if not isinstance(content, str):
            raise RecordError(f"{where}.{i}.content", f"message {where}.{i} content is not text")
        role_name = _ROLE_NAMES.get(str(role).lower(), str(role)) if role is not None else "user"
        turns.append({"role": role_name, "content": content})
    return turns


def _flags(responses: list[ResponseIn]) -> list[str]:
    texts = [r.text for r in responses]
    flags = []
    if len(texts) != len(set(texts)):
        flags.append("identical_responses")
    if any(not t or t.isspace() for t in texts):
        flags.append("empty_response")
    return flags


def _pair(
    conversation: Conversation,
    chosen: str,
    rejected: str,
    record: dict[str, Any],
    *,
    score_chosen: float | None = None,
    score_rejected: float | None = None,
    extra: dict[str, Any] | None = None,
) -> Parsed:
    meta = record.get("metadata")
    if not isinstance(meta, dict):
        meta = {}
    model_c = _str_or_none(record.get("chosen_model", meta.get("chosen_model")))
    model_r = _str_or_none(record.get("rejected_model", meta.get("rejected_model")))
    responses = [
        ResponseIn(
            chosen,
            Role.CHOSEN,
            model_c,
            score_chosen,
            {"score": score_chosen} if score_chosen is not None else None,
        ),
        ResponseIn(
            rejected,
            Role.REJECTED,
            model_r,
            score_rejected,
            {"score": score_rejected} if score_rejected is not None else None,
        ),
    ]
    extras: dict[str, Any] = {"source": _source(record), "kind": "pair"}
    extras.update(extra or {})
    return conversation, responses, extras


def _str_or_none(v: Any) -> str | None:
    return v if isinstance(v, str) and v else None


def _pair_scores(record: dict[str, Any]) -> tuple[float | None, float | None]:
    meta = record.get("metadata")
    return (
        _first_number(
            record.get("score_chosen"),
            record.get("rating_chosen"),
            _dig(meta, "score_chosen"),
            _dig(meta, "rating_chosen"),
        ),
        _first_number(
            record.get("score_rejected"),
            record.get("rating_rejected"),
            _dig(meta, "score_rejected"),
            _dig(meta, "rating_rejected"),
        ),
    )


# -- 1. TRL standard -------------------------------------------------------------------


def _detect_trl(r: dict[str, Any]) -> bool:
    return (
        isinstance(r.get("prompt"), str)
        and "chosen" in r
        and "rejected" in r
        and not isinstance(r.get("chosen"), list)
    )


def _parse_trl(r: dict[str, Any]) -> Parsed:
    prompt = _text(r, "prompt")
    sc, sr = _pair_scores(r)
    return _pair(
        [{"role": "user", "content": prompt}],
        _text(r, "chosen"),
        _text(r, "rejected"),
        r,
        score_chosen=sc,
        score_rejected=sr,
    )


# -- 2. TRL conversational ---------------------------------------------------------------


def _detect_trl_chat(r: dict[str, Any]) -> bool:
    return isinstance(r.get("chosen"), list) and isinstance(r.get("rejected"), list)


def _split_shared(chosen: Conversation, rejected: Conversation) -> tuple[Conversation, str, str]:
    n = 0
    while n < min(len(chosen), len(rejected)) - 1 and chosen[n] == rejected[n]:
        n += 1
    return chosen[:n], _join(chosen[n:]), _join(rejected[n:])


def _join(turns: Conversation) -> str:
    if len(turns) == 1:
        return turns[0]["content"]
    return "\n\n".join(f"{t['role'].capitalize()}: {t['content']}" for t in turns)


def _parse_trl_chat(r: dict[str, Any]) -> Parsed:
    chosen = _messages(r.get("chosen"), "chosen")
    rejected = _messages(r.get("rejected"), "rejected")
    if not chosen:
        raise RecordError("chosen", "field 'chosen' is an empty message list")
    if not rejected:
        raise RecordError("rejected", "field 'rejected' is an empty message list")
    prompt = r.get("prompt")
    if prompt is None:
        conversation, c, j = _split_shared(chosen, rejected)
    else:
        if isinstance(prompt, str):
            conversation = [{"role": "user", "content": prompt}]
        else:
            conversation = _messages(prompt, "prompt")
        c, j = _join(chosen), _join(rejected)
    sc, sr = _pair_scores(r)
    return _pair(conversation, c, j, r, score_chosen=sc, score_rejected=sr)


# -- 3. HH-RLHF transcripts --------------------------------------------------------------

_HH_TURN = re.compile(r"\n\n(Human|Assistant): ?")


def _detect_hh(r: dict[str, Any]) -> bool:
    c = r.get("chosen")
    return (
        "prompt" not in r
        and isinstance(c, str)
        and isinstance(r.get("rejected"), str)
        and ("\n\nHuman:" in c[:2000] or c.startswith("Human:"))
    )


def split_hh(text: str, where: str) -> Conversation:
    """Split an HH transcript (``\\n\\nHuman: … \\n\\nAssistant: …``) into turns."""
    if text.startswith("Human:"):
        text = "\n\n" + text
    parts = _HH_TURN.split(text)
    if parts[0].strip() or len(parts) < 3:
        raise RecordError(
            where, f"field {where!r} is not a '\\n\\nHuman: … \\n\\nAssistant: …' transcript"
        )
    turns = []
    for i in range(1, len(parts), 2):
        role = "user" if parts[i] == "Human" else "assistant"
        turns.append({"role": role, "content": parts[i + 1]})
    return turns


_HH_LAST = "\n\nAssistant:"


def hh_pair(chosen_text: str, rejected_text: str) -> tuple[Conversation, str, str] | None:
    """The common case of an HH record, fast: both transcripts share everything before
    their last Assistant turn. The conversation and the two responses, or None when the
    transcripts differ earlier (`_parse_hh` then compares them turn by turn)."""
    i = chosen_text.rfind(_HH_LAST)
    if i <= 0 or rejected_text.rfind(_HH_LAST) != i:
        return None
    prefix = chosen_text[:i]
    if (
        not rejected_text.startswith(prefix)
        or chosen_text.find("\n\nHuman:", i) >= 0
        or rejected_text.find("\n\nHuman:", i) >= 0
    ):
        return None
    conversation = split_hh(prefix, "chosen")
    if conversation[-1]["role"] != "user":
        return None
    start = i + len(_HH_LAST)
    # one space after "Assistant:" belongs to the marker, as in `split_hh`
    c = chosen_text[start + (chosen_text[start : start + 1] == " ") :]
    rj = rejected_text[start + (rejected_text[start : start + 1] == " ") :]
    return conversation, c, rj


def pair_flags(chosen: str, rejected: str) -> str | None:
    """The flags `_flags` gives a pair of responses, joined as the store keeps them."""
    if chosen == rejected:
        if not chosen or chosen.isspace():
            return "identical_responses,empty_response"
        return "identical_responses"
    if not chosen or chosen.isspace() or not rejected or rejected.isspace():
        return "empty_response"
    return None


def _parse_hh(r: dict[str, Any]) -> Parsed:
    chosen_text, rejected_text = _text(r, "chosen"), _text(r, "rejected")
    fast = hh_pair(chosen_text, rejected_text)
    if fast is not None:
        return _pair(*fast, r)
    chosen = split_hh(chosen_text, "chosen")
    rejected = split_hh(rejected_text, "rejected")
    n = 0
    while n < min(len(chosen), len(rejected)) and chosen[n] == rejected[n]:
        n += 1
    if n and n == len(chosen) == len(rejected):
        n -= 1  # identical transcripts: the last turn is the (identical) response
    while n and chosen[n - 1]["role"] != "user":
        n -= 1  # the shared part ends at a user turn; the rest is the response
    conversation = chosen[:n]
    c_rest, r_rest = chosen[n:], rejected[n:]
    flags = []
    if len(c_rest) != 1 or len(r_rest) != 1:
        flags.append("diverges_early")
    return _pair(
        conversation,
        c_rest[0]["content"] if len(c_rest) == 1 else _join(c_rest),
        r_rest[0]["content"] if len(r_rest) == 1 else _join(r_rest),
        r,
        extra={"flags": flags},
    )


# -- 4. UltraFeedback raw ----------------------------------------------------------------

UF_ASPECTS = ("helpfulness", "honesty", "instruction_following", "truthfulness")


def _detect_uf(r: dict[str, Any]) -> bool:
    comps = r.get("completions")
    return (
        "instruction" in r
        and isinstance(comps, list)
        and bool(comps)
        and isinstance(comps[0], dict)
        and "annotations" in comps[0]
    )


def _parse_uf(r: dict[str, Any]) -> Parsed:
    instruction = _text(r, "instruction")
    comps = r.get("completions")
    if not isinstance(comps, list) or not comps:
        raise RecordError("completions", "field 'completions' should be a non-empty list")
    responses = []
    for i, c in enumerate(comps):
        where = f"completions.{i}"
        if not isinstance(c, dict):
            raise RecordError(where, f"{where} is not an object")
        text = _text(c, "response", f"{where}.response")
        ratings: dict[str, Any] = {}
        ann = c.get("annotations") or {}
        for aspect in UF_ASPECTS:
            a = ann.get(aspect) if isinstance(ann, dict) else None
            rating = a.get("Rating") if isinstance(a, dict) else a
            ratings[aspect] = _number(rating)
        ratings["fine-grained_score"] = _number(c.get("fine-grained_score"))
        ratings["overall_score"] = _number(c.get("overall_score"))
        aspect_values = [v for k, v in ratings.items() if k in UF_ASPECTS and v is not None]
        primary = ratings["fine-grained_score"]
        if primary is None and aspect_values:
            primary = sum(aspect_values) / len(aspect_values)
        responses.append(
            ResponseIn(
                text, Role.NONE, model=_str_or_none(c.get("model")), rating=primary, ratings=ratings
            )
        )
    return (
        [{"role": "user", "content": instruction}],
        responses,
        {
            "source": _source(r),
            "kind": "multi",
        },
    )


# -- 5. Multi-response -------------------------------------------------------------------

_SCORE_KEYS = ("score", "rating", "preference", "reward", "overall_score", "fine-grained_score")


def _detect_multi(r: dict[str, Any]) -> bool:
    has_prompt = isinstance(r.get("prompt"), str) or isinstance(r.get("instruction"), str)
    return has_prompt and (
        isinstance(r.get("responses"), list) or isinstance(r.get("completions"), list)
    )


def _parse_multi(r: dict[str, Any]) -> Parsed:
    key = "prompt" if "prompt" in r else "instruction"
    prompt = _text(r, key)
    list_key = "responses" if "responses" in r else "completions"
    items = r.get(list_key)
    if not isinstance(items, list) or not items:
        raise RecordError(list_key, f"field {list_key!r} should be a non-empty list")
    responses = []
    for i, item in enumerate(items):
        where = f"{list_key}.{i}"
        if isinstance(item, str):
            responses.append(ResponseIn(item))
            continue
        if item is None:
            raise RecordError(where, f"{where} is null; a response was expected")
        if not isinstance(item, dict):
            raise RecordError(where, f"{where} is neither a string nor an object")
        tkey = next((k for k in ("response", "text", "content", "output") if k in item), None)
        if tkey is None:
            raise RecordError(where, f"{where} has no 'response' or 'text' field")
        text = _text(item, tkey, f"{where}.{tkey}")
        numbers = {k: _number(v) for k, v in item.items() if _number(v) is not None}
        primary = _first_number(*(item.get(k) for k in _SCORE_KEYS))
        responses.append(
            ResponseIn(
                text,
                Role.NONE,
                model=_str_or_none(item.get("model")),
                rating=primary,
                ratings=numbers or None,
            )
        )
    ref = r.get("reference")
    reference = ref if isinstance(ref, str) else None
    if isinstance(ref, dict):
        reference = _str_or_none(ref.get("response", ref.get("text")))
    return (
        [{"role": "user", "content": prompt}],
        responses,
        {
            "source": _source(r),
            "reference": reference,
            "kind": "multi",
        },
    )


# -- 6. PandaLM-style voted pairs -----------------------------------------------------------


def _detect_pandalm(r: dict[str, Any]) -> bool:
    return "response1" in r and "response2" in r


def _parse_pandalm(r: dict[str, Any]) -> Parsed:
    instruction = _text(r, "instruction")
    extra_input = r.get("input")
    prompt = instruction + (
        f"\n\n{extra_input}" if isinstance(extra_input, str) and extra_input else ""
    )
    r1, r2 = _text(r, "response1"), _text(r, "response2")
    vote_keys = sorted(k for k in r if re.fullmatch(r"annotator\d+", k))
    if not vote_keys and "label" in r:
        vote_keys = ["label"]
    if not vote_keys:
        raise RecordError("label", "no 'label' or 'annotator1..n' field to say which response won")
    votes = []
    for k in vote_keys:
        v = _number(r[k])
        if v not in (0.0, 1.0, 2.0):
            raise RecordError(
                k, f"field {k!r} is {r[k]!r}; 1 or 2 (the better response) or 0 (tie) was expected"
            )
        votes.append(int(v))
    v1, v2 = votes.count(1), votes.count(2)
    n = len(votes)
    roles = (Role.NONE, Role.NONE)
    if v1 > v2:
        roles = (Role.CHOSEN, Role.REJECTED)
    elif v2 > v1:
        roles = (Role.REJECTED, Role.CHOSEN)
    responses = [
        ResponseIn(r1, roles[0], rating=v1 / n, ratings={"votes": v1, "annotators": n}),
        ResponseIn(r2, roles[1], rating=v2 / n, ratings={"votes": v2, "annotators": n}),
    ]
    if roles[0] is Role.REJECTED:
        responses.reverse()  # chosen first, as in every pairwise format
    flags = ["tie"] if v1 == v2 else []
    return (
        [{"role": "user", "content": prompt}],
        responses,
        {
            "source": _str_or_none(r.get("motivation_app")),
            "kind": "pair",
            "flags": flags,
        },
    )


# -- 7. ShareGPT with chosen/rejected turns -----------------------------------------------------


def _detect_sharegpt(r: dict[str, Any]) -> bool:
    return isinstance(r.get("conversations"), list) and isinstance(r.get("chosen"), dict)


def _parse_sharegpt(r: dict[str, Any]) -> Parsed:
    conversation = _messages(r.get("conversations"), "conversations")
    chosen, rejected = r.get("chosen"), r.get("rejected")
    if not isinstance(chosen, dict):
        raise RecordError("chosen", "field 'chosen' should be a {from, value} turn")
    if not isinstance(rejected, dict):
        raise RecordError("rejected", "field 'rejected' should be a {from, value} turn")
    c = _text(chosen, "value", "chosen.value")
    j = _text(rejected, "value", "rejected.value")
    sc, sr = _pair_scores(r)
    return _pair(conversation, c, j, r, score_chosen=sc, score_rejected=sr)


# -- 8. Nested message records (RM-Gallery / RewardBench style) --------------------------------


def _detect_messages(r: dict[str, Any]) -> bool:
    es = r.get("evaluation_sample")
    return isinstance(es, dict) and "input" in es and "outputs" in es


def _parse_messages(r: dict[str, Any]) -> Parsed:
    es = r["evaluation_sample"]
    conversation = _messages(es.get("input"), "evaluation_sample.input")
    outputs = es.get("outputs")
    if not isinstance(outputs, list) or not outputs:
        raise RecordError(
            "evaluation_sample.outputs", "no candidate turns in evaluation_sample.outputs"
        )
    responses = []
    for i, o in enumerate(outputs):
        where = f"evaluation_sample.outputs.{i}"
        if not isinstance(o, dict):
            raise RecordError(where, f"{where} is not an object")
        text = _text(o, "content", f"{where}.content")
        label = o.get("content_label")
        role = {"chosen": Role.CHOSEN, "rejected": Role.REJECTED}.get(str(label), Role.NONE)
        reward = _dig(o, "rewards", "total_score")
        responses.append(
            ResponseIn(
                text,
                role,
                rating=_number(reward),
                ratings={"total_score": _number(reward)} if _number(reward) is not None else None,
            )
        )
    responses.sort(key=lambda x: {Role.CHOSEN: 0, Role.REJECTED: 1}.get(x.role, 2))
    kind = (
        "pair"
        if any(x.role is not Role.NONE for x in responses) and len(responses) == 2
        else "multi"
    )
    source = _str_or_none(_dig(es, "data_info", "source")) or _source(r)
    return conversation, responses, {"source": source, "kind": kind}


FORMATS: dict[str, Format] = {
    f.name: f
    for f in (
        Format(
            "ultrafeedback",
            "UltraFeedback raw: instruction + completions with annotations",
            _detect_uf,
            _parse_uf,
        ),
        Format(
            "hh-messages",
            "nested message records: evaluation_sample.input / outputs",
            _detect_messages,
            _parse_messages,
        ),
        Format(
            "pandalm",
            "voted pairs: instruction, input, response1, response2, annotator1..n",
            _detect_pandalm,
            _parse_pandalm,
        ),
        Format(
            "sharegpt",
            "conversations [{from, value}] with chosen / rejected turns",
            _detect_sharegpt,
            _parse_sharegpt,
        ),
        Format(
            "trl-chat",
            "TRL conversational: chosen / rejected (and prompt) as message lists",
            _detect_trl_chat,
            _parse_trl_chat,
        ),
        Format(
            "hh-rlhf",
            "HH-RLHF transcripts: chosen / rejected as '\\n\\nHuman: …' texts",
            _detect_hh,
            _parse_hh,
        ),
        Format("trl", "TRL standard: prompt, chosen, rejected strings", _detect_trl, _parse_trl),
        Format(
            "multi",
            "prompt | instruction with responses | completions (K responses)",
            _detect_multi,
            _parse_multi,
        ),
    )
}


def detect(records: list[dict[str, Any]]) -> Format | None:
    """The format that fits the most of the first records (all that fit, first in order)."""
    best: tuple[int, Format] | None = None
    for fmt in FORMATS.values():
        hits = sum(1 for r in records if isinstance(r, dict) and fmt.detect(r))
        if hits and (best is None or hits > best[0]):
            best = (hits, fmt)
    return best[1] if best else None


def format_list() -> str:
    """The formats, one a line, for error messages and --help."""
    return "\n".join(f"  {f.name:14} {f.summary}" for f in FORMATS.values())


# -- 9. --map ---------------------------------------------------------------------------

MAP_FIELDS = (
    "prompt",
    "chosen",
    "rejected",
    "responses",
    "score_chosen",
    "score_rejected",
    "reference",
    "source",
    "chosen_model",
    "rejected_model",
)


def parse_map_spec(spec: str) -> dict[str, list[str | int]]:
    """``prompt=question,chosen=answers.0.text`` → field → path (list indices as ints)."""
    mapping: dict[str, list[str | int]] = {}
    for part in filter(None, (p.strip() for p in spec.split(","))):
        if "=" not in part:
            raise ValueError(f"--map entry {part!r} should look like field=path")
        name, path = (x.strip() for x in part.split("=", 1))
        if name not in MAP_FIELDS:
            raise ValueError(f"--map field {name!r} is unknown; use one of {', '.join(MAP_FIELDS)}")
        if not path:
            raise ValueError(f"--map field {name!r} has an empty path")
        mapping[name] = [int(p) if p.isdigit() else p for p in path.split(".")]
    if "prompt" not in mapping:
        raise ValueError("--map needs prompt=PATH")
    if "responses" not in mapping and not ("chosen" in mapping and "rejected" in mapping):
        raise ValueError("--map needs chosen=PATH and rejected=PATH, or responses=PATH")
    return mapping


def _get_path(record: Any, path: list[str | int], name: str) -> Any:
    cur = record
    for i, key in enumerate(path):
        shown = ".".join(str(p) for p in path[: i + 1])
        if isinstance(key, int):
            if not isinstance(cur, list) or key >= len(cur):
                raise RecordError(shown, f"{name}: no list item at {shown!r}")
            cur = cur[key]
        else:
            if not isinstance(cur, dict) or key not in cur:
                raise RecordError(shown, f"{name}: field {shown!r} is missing")
            cur = cur[key]
    return cur


def mapped_format(mapping: dict[str, list[str | int]]) -> Format:
    """A format that reads fields at the given dotted paths."""

    def get(r: dict[str, Any], name: str, required: bool = True) -> Any:
        if name not in mapping:
            return None
        try:
            return _get_path(r, mapping[name], name)
        except RecordError:
            if required:
                raise
            return None

    def as_text(value: Any, name: str) -> str:
        path = ".".join(str(p) for p in mapping[name])
        if value is None:
            raise RecordError(path, f"{name} at {path!r} is null")
        if isinstance(value, list):
            return _join(_messages(value, path))
        if not isinstance(value, str):
            raise RecordError(path, f"{name} at {path!r} is a {type(value).__name__}, not text")
        return value

    def parse(r: dict[str, Any]) -> Parsed:
        prompt = get(r, "prompt")
        if isinstance(prompt, list):
            conversation = _messages(prompt, "prompt")
        else:
            conversation = [{"role": "user", "content": as_text(prompt, "prompt")}]
        reference = get(r, "reference", required=False)
        source = get(r, "source", required=False)
        if "responses" in mapping:
            fake = {"prompt": "", "responses": get(r, "responses")}
            _, responses, _ = _parse_multi(fake)
            return (
                conversation,
                responses,
                {
                    "source": source if isinstance(source, str) else None,
                    "reference": reference if isinstance(reference, str) else None,
                    "kind": "multi",
                },
            )
        chosen = as_text(get(r, "chosen"), "chosen")
        rejected = as_text(get(r, "rejected"), "rejected")
        conv, responses, extras = _pair(
            conversation,
            chosen,
            rejected,
            {},
            score_chosen=_number(get(r, "score_chosen", required=False)),
            score_rejected=_number(get(r, "score_rejected", required=False)),
        )
        responses[0].model = _str_or_none(get(r, "chosen_model", required=False))
        responses[1].model = _str_or_none(get(r, "rejected_model", required=False))
        extras["source"] = source if isinstance(source, str) else None
        extras["reference"] = reference if isinstance(reference, str) else None
        return conv, responses, extras

    return Format("map", "fields read at --map paths", lambda r: True, parse)


def to_sample(fmt: Format, record: dict[str, Any], row: int, raw: str | bytes) -> SampleIn:
    """Parse one record into a sample; raises `RecordError`."""
    if not isinstance(record, dict):
        raise RecordError("(record)", f"a JSON object was expected, found {type(record).__name__}")
    conversation, responses, extras = fmt.parse(record)
    flags = list(extras.get("flags") or []) + _flags(responses)
    return SampleIn(
        row=row,
        conversation=conversation,
        responses=responses,
        record=raw,
        source=extras.get("source"),
        reference=extras.get("reference"),
        flags=flags,
        kind=extras.get("kind", "pair"),
    )
