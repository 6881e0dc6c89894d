"""Each input format, read from real data in ../shared/data where it exists."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from auditor.formats import FORMATS, detect
from auditor.ingest import ingest_file
from store import Store
from tests.conftest import shared_file


def _ingest(store: Store, path: Path, **kw: object):  # type: ignore[no-untyped-def]
    return ingest_file(store, path, **kw)  # type: ignore[arg-type]


def test_trl_standard_with_nested_scores(store: Store) -> None:
    path = shared_file("ultrafeedback-binarized-trl/processed_train_clean.jsonl")
    report = _ingest(store, path)
    assert report.format == "trl"
    assert report.samples == 1000 and report.responses == 2000 and report.rejects == 0
    first = json.loads(_first_line(path))
    s = store.sample(1)
    assert s is not None
    assert s["conversation"] == [{"role": "user", "content": first["prompt"]}]
    chosen, rejected = s["responses"]
    assert (chosen["role"], rejected["role"]) == ("chosen", "rejected")
    assert chosen["text"] == first["chosen"] and rejected["text"] == first["rejected"]
    assert chosen["rating"] == first["metadata"]["score_chosen"]
    assert rejected["rating"] == first["metadata"]["score_rejected"]
    assert s["record"] == _first_line(path).rstrip("\n")  # kept verbatim


def test_trl_argilla_ratings_models_and_source(store: Store) -> None:
    path = shared_file("ultrafeedback-binarized-argilla/ultrafeedback_sample_1k.jsonl")
    report = _ingest(store, path)
    assert report.format == "trl" and report.samples == 1000
    first = json.loads(_first_line(path))
    s = store.sample(1)
    assert s is not None
    assert s["source"] == first["metadata"]["source"]
    assert s["responses"][0]["model"] == first["metadata"]["chosen_model"]
    assert s["responses"][1]["rating"] == first["metadata"]["rating_rejected"]


def test_hh_rlhf_transcripts_split_into_turns(store: Store) -> None:
    path = shared_file("hh-rlhf/harmless-base-test.jsonl")
    report = _ingest(store, path)
    assert report.format == "hh-rlhf" and report.samples == 2312
    first = json.loads(_first_line(path))
    s = store.sample(1)
    assert s is not None
    conv = s["conversation"]
    assert conv[0]["role"] == "user" and conv[0]["content"].startswith("what are some pranks")
    assert conv[-1]["role"] == "user"
    assert [t["role"] for t in conv] == ["user", "assistant"] * (len(conv) // 2) + ["user"]
    # the conversation plus each response rebuilds each whole transcript
    rebuilt = "".join(
        f"\n\n{'Human' if t['role'] == 'user' else 'Assistant'}: {t['content']}" for t in conv
    )
    assert rebuilt + "\n\nAssistant: " + s["responses"][0]["text"] == first["chosen"]
    assert rebuilt + "\n\nAssistant: " + s["responses"][1]["text"] == first["rejected"]


def test_alpacaeval_multi_with_reference(store: Store) -> None:
    path = shared_file("alpacaeval-multi/alpacaeval_8models_gpt4turbo_judged.jsonl.gz")
    report = _ingest(store, path)
    assert report.format == "multi" and report.samples == 805 and report.responses == 805 * 8
    first = json.loads(_first_line(path))
    s = store.sample(1)
    assert s is not None
    assert s["kind"] == "multi"
    assert s["reference"] == first["reference"]["response"]
    assert s["source"] == first["dataset"]
    assert [r["model"] for r in s["responses"]] == [c["model"] for c in first["completions"]]
    assert [r["rating"] for r in s["responses"]] == [c["preference"] for c in first["completions"]]


def test_pandalm_json_array_majority_and_ties(store: Store) -> None:
    path = shared_file("pandalm/pandalm_testset-v1.json")
    report = _ingest(store, path)
    assert report.format == "pandalm" and report.samples == 999
    records = json.loads(path.read_text())
    ties = 0
    for i, rec in enumerate(records[:200], start=1):
        s = store.sample(i)
        assert s is not None
        votes = [rec[k] for k in ("annotator1", "annotator2", "annotator3")]
        v1, v2 = votes.count(1), votes.count(2)
        roles = [r["role"] for r in s["responses"]]
        if v1 == v2:
            ties += 1
            assert roles == ["none", "none"] and "tie" in s["flags"]
        else:
            winner = rec["response1"] if v1 > v2 else rec["response2"]
            assert roles == ["chosen", "rejected"]
            assert s["responses"][0]["text"] == str(winner) or isinstance(winner, bool)
    assert ties > 0  # the real data has ties; they stay ties


def test_hh_helpful_nested_messages(store: Store) -> None:
    path = shared_file("hh-helpful-messages/anthropic_helpful_0521.jsonl")
    report = _ingest(store, path)
    assert report.format == "hh-messages" and report.samples == 1137
    first = json.loads(_first_line(path))
    s = store.sample(1)
    assert s is not None
    assert len(s["conversation"]) == len(first["evaluation_sample"]["input"])
    assert s["responses"][0]["role"] == "chosen" and s["responses"][0]["rating"] == 1.0
    assert s["source"] == "rewardbench"


def _first_line(path: Path) -> str:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as f:  # type: ignore[operator]
        return str(f.readline())


def _write_jsonl(path: Path, records: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def test_trl_conversational_shared_turns(store: Store, tmp_path: Path) -> None:
    conv = [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello!"},
        {"role": "user", "content": "2+2?"},
    ]
    recs = [
        {
            "chosen": [*conv, {"role": "assistant", "content": "4"}],
            "rejected": [*conv, {"role": "assistant", "content": "5"}],
        },
        {
            "prompt": conv,
            "chosen": [{"role": "assistant", "content": "4"}],
            "rejected": [{"role": "assistant", "content": "22"}],
            "score_chosen": 9,
            "score_rejected": 2,
        },
    ]
    report = _ingest(store, _write_jsonl(tmp_path / "chat.jsonl", recs))
    assert report.format == "trl-chat"
    for sid, rejected in ((1, "5"), (2, "22")):
        s = store.sample(sid)
        assert s is not None
        assert s["conversation"] == conv
        assert [r["text"] for r in s["responses"]] == ["4", rejected]
    s2 = store.sample(2)
    assert s2 is not None and s2["responses"][0]["rating"] == 9


def test_ultrafeedback_raw_with_na_ratings(store: Store, tmp_path: Path) -> None:
    def comp(model: str, text: str, ratings: list[str], fine: object) -> dict[str, object]:
        aspects = ["helpfulness", "honesty", "instruction_following", "truthfulness"]
        return {
            "model": model,
            "response": text,
            "annotations": {
                a: {"Rating": r, "Rationale": "x"} for a, r in zip(aspects, ratings, strict=True)
            },
            "fine-grained_score": fine,
            "overall_score": 7.0,
        }

    rec = {
        "source": "evol_instruct",
        "instruction": "Name a prime.",
        "completions": [
            comp("m1", "7", ["5", "5", "4", "5"], 4.75),
            comp("m2", "9", ["2", "N/A", "1", "2"], None),
        ],
    }
    report = _ingest(store, _write_jsonl(tmp_path / "uf.jsonl", [rec]))
    assert report.format == "ultrafeedback"
    s = store.sample(1)
    assert s is not None
    r1, r2 = s["responses"]
    assert r1["rating"] == 4.75 and r1["ratings"]["helpfulness"] == 5.0
    assert r2["ratings"]["honesty"] is None  # "N/A" is missing, not zero
    assert r2["rating"] == pytest.approx((2 + 1 + 2) / 3)  # mean of the rated aspects
    assert s["source"] == "evol_instruct"


def test_sharegpt_pairs(store: Store, tmp_path: Path) -> None:
    rec = {
        "conversations": [
            {"from": "system", "value": "Be brief."},
            {"from": "human", "value": "Capital of Peru?"},
        ],
        "chosen": {"from": "gpt", "value": "Lima."},
        "rejected": {"from": "gpt", "value": "Cusco."},
    }
    report = _ingest(store, _write_jsonl(tmp_path / "sg.jsonl", [rec]))
    assert report.format == "sharegpt"
    s = store.sample(1)
    assert s is not None
    assert s["conversation"][0] == {"role": "system", "content": "Be brief."}
    assert s["conversation"][1] == {"role": "user", "content": "Capital of Peru?"}
    assert [r["text"] for r in s["responses"]] == ["Lima.", "Cusco."]


def test_map_dotted_paths(store: Store, tmp_path: Path) -> None:
    rec = {"question": "Q?", "answers": [{"text": "good"}, {"text": "bad"}], "meta": {"s": [8, 3]}}
    path = _write_jsonl(tmp_path / "custom.jsonl", [rec])
    report = _ingest(
        store,
        path,
        map_spec="prompt=question,chosen=answers.0.text,rejected=answers.1.text,"
        "score_chosen=meta.s.0,score_rejected=meta.s.1",
    )
    assert report.format == "map"
    s = store.sample(1)
    assert s is not None
    assert s["prompt"] == "Q?"
    assert [(r["text"], r["role"], r["rating"]) for r in s["responses"]] == [
        ("good", "chosen", 8.0),
        ("bad", "rejected", 3.0),
    ]


def test_parquet_and_csv(store: Store, tmp_path: Path) -> None:
    import pandas as pd

    rows = [{"prompt": f"p{i}", "chosen": f"c{i}", "rejected": f"r{i}"} for i in range(5)]
    pd.DataFrame(rows).to_parquet(tmp_path / "d.parquet")
    pd.DataFrame(rows).to_csv(tmp_path / "d.csv", index=False)
    a = _ingest(store, tmp_path / "d.parquet")
    b = _ingest(store, tmp_path / "d.csv")
    assert (a.format, a.samples, b.format, b.samples) == ("trl", 5, "trl", 5)
    s = store.sample(6)
    assert s is not None and s["responses"][0]["text"] == "c0" and s["row"] == 2  # csv line 2


def test_format_override_and_detection_order() -> None:
    hh = {"chosen": "\n\nHuman: hi\n\nAssistant: a", "rejected": "\n\nHuman: hi\n\nAssistant: b"}
    trl = {"prompt": "hi", "chosen": "a", "rejected": "b"}
    fmt = detect([hh])
    assert fmt is not None and fmt.name == "hh-rlhf"
    fmt = detect([trl])
    assert fmt is not None and fmt.name == "trl"
    assert set(FORMATS) == {
        "trl",
        "trl-chat",
        "hh-rlhf",
        "ultrafeedback",
        "multi",
        "pandalm",
        "sharegpt",
        "hh-messages",
    }


def test_same_file_twice_adds_nothing_and_files_are_separate_datasets(store: Store) -> None:
    a = shared_file("ultrafeedback-binarized-trl/processed_eval_clean.jsonl")
    b = shared_file("ultrafeedback-binarized-trl/processed_train_clean.jsonl")
    _ingest(store, a)
    again = _ingest(store, a)
    assert again.skipped_duplicate
    _ingest(store, b)
    info = store.info()
    assert [d["samples"] for d in info["datasets"]] == [200, 1000]
    assert info["samples"] == 1200
