"""Export: every format round-trips through ingest on real data; selection and decisions."""

from __future__ import annotations

import gzip
import hashlib
import json
import random
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from auditor.analysis import compute_map
from auditor.export import ExportError, ExportOptions, export, prompt_string
from auditor.ingest import ingest_file
from auditor.mapstats import REGION_CODES
from auditor.scorers.annotations import score_annotations
from store import Store
from tests.conftest import shared_file

HH = "hh-rlhf/harmless-base-test.jsonl"
UF_TRL = "ultrafeedback-binarized-trl/processed_eval_clean.jsonl"
ARGILLA = "ultrafeedback-binarized-argilla/ultrafeedback_sample_1k.jsonl"
MESSAGES = "hh-helpful-messages/anthropic_helpful_0521.jsonl"
ALPACA = "alpacaeval-multi/alpacaeval_8models_gpt4turbo_judged.jsonl.gz"
PANDALM = "pandalm/pandalm_testset-v1.json"


def samples(store: Store) -> list[dict[str, Any]]:
    """Every sample as (conversation, responses as (role, text, rating, model)), in order."""
    out = []
    for sid in store.sample_ids():
        s = store.sample(sid)
        assert s is not None
        out.append(
            {
                "id": sid,
                "conversation": s["conversation"],
                "responses": [
                    (r["role"], r["text"], r["rating"], r["model"]) for r in s["responses"]
                ],
            }
        )
    return out


def reingest(tmp_path: Path, path: Path, name: str = "again") -> Store:
    """A fresh store holding only the exported file."""
    fresh = Store(tmp_path / f"{name}.db")
    ingest_file(fresh, path)
    return fresh


def pair(s: dict[str, Any]) -> tuple[str, str]:
    roles = {r[0]: r[1] for r in s["responses"]}
    return roles["chosen"], roles["rejected"]


# -- original: the input records, exactly -----------------------------------------------------


@pytest.mark.parametrize("relative", [HH, UF_TRL, ARGILLA, MESSAGES, ALPACA])
def test_original_export_is_the_input_byte_for_byte(
    store: Store, tmp_path: Path, relative: str
) -> None:
    source = shared_file(relative)
    ingest_file(store, source)
    out = tmp_path / "original.jsonl"
    report = export(store, out, ExportOptions(format="original"))
    raw = gzip.decompress(source.read_bytes()) if source.suffix == ".gz" else source.read_bytes()
    assert out.read_bytes() == raw
    assert report.records_out == raw.count(b"\n")


def test_original_of_a_json_array_reingests_to_the_same_samples(
    store: Store, tmp_path: Path
) -> None:
    ingest_file(store, shared_file(PANDALM))
    for name in ("original.jsonl", "original.json"):
        out = tmp_path / name
        export(store, out, ExportOptions(format="original"))
        again = reingest(tmp_path, out, name)
        assert [(s["conversation"], s["responses"]) for s in samples(again)] == [
            (s["conversation"], s["responses"]) for s in samples(store)
        ]
        again.close()
    # the .json container keeps each record's text verbatim, indentation included
    text = (tmp_path / "original.json").read_text()
    assert '\n        "instruction": ' in text


@pytest.mark.parametrize("relative", [HH, ARGILLA, MESSAGES, PANDALM])
def test_original_applies_flips_and_drops(store: Store, tmp_path: Path, relative: str) -> None:
    ingest_file(store, shared_file(relative))
    before = samples(store)
    labelled = [s for s in before if {r[0] for r in s["responses"]} == {"chosen", "rejected"}]
    flipped = {s["id"] for s in labelled[:40:3]}
    dropped = {s["id"] for s in labelled[1:40:3]}
    for sid in flipped:
        store.decide(sid, "flip", "ana")
    for sid in dropped:
        store.decide(sid, "drop", "ben")
    out = tmp_path / "fixed.jsonl"
    report = export(store, out, ExportOptions(format="original"))
    assert report.decisions == {"flip": len(flipped), "drop": len(dropped)}

    again = reingest(tmp_path, out)
    after = samples(again)
    kept = [s for s in before if s["id"] not in dropped]
    assert len(after) == len(kept)
    for old, new in zip(kept, after, strict=True):
        assert new["conversation"] == old["conversation"]
        if old["id"] not in flipped:
            assert new["responses"] == old["responses"]
            continue
        old_by_role = {r[0]: r for r in old["responses"]}
        new_by_role = {r[0]: r for r in new["responses"]}
        # the texts (and their models) trade places; the ratings stay with the place
        assert new_by_role["chosen"][1] == old_by_role["rejected"][1]
        assert new_by_role["rejected"][1] == old_by_role["chosen"][1]
        assert new_by_role["chosen"][3] == old_by_role["rejected"][3]
        assert new_by_role["chosen"][2] == old_by_role["chosen"][2]
        assert new_by_role["rejected"][2] == old_by_role["rejected"][2]
    again.close()


def test_a_flipped_hh_record_swaps_the_whole_transcripts(store: Store, tmp_path: Path) -> None:
    source = shared_file(HH)
    ingest_file(store, source)
    store.decide(store.sample_ids()[0], "flip", "ana")
    out = tmp_path / "fixed.jsonl"
    export(store, out, ExportOptions(format="original"))
    first_in = json.loads(source.open().readline())
    first_out_line = out.open().readline()
    assert json.loads(first_out_line) == {
        "chosen": first_in["rejected"],
        "rejected": first_in["chosen"],
    }
    assert list(json.loads(first_out_line)) == list(first_in)  # field order kept


# -- trl and trl-chat ----------------------------------------------------------------------------


def test_trl_round_trip_keeps_prompts_labels_and_scores(store: Store, tmp_path: Path) -> None:
    ingest_file(store, shared_file(UF_TRL))
    out = tmp_path / "trl.jsonl"
    report = export(store, out, ExportOptions(format="trl"))
    assert report.records_out == len(store.sample_ids())
    again = reingest(tmp_path, out)
    assert [(s["conversation"], s["responses"]) for s in samples(again)] == [
        (s["conversation"], s["responses"]) for s in samples(store)
    ]
    again.close()


def test_trl_renders_a_multi_turn_prompt_as_an_hh_transcript(store: Store, tmp_path: Path) -> None:
    ingest_file(store, shared_file(HH))
    out = tmp_path / "trl.jsonl.gz"
    export(store, out, ExportOptions(format="trl"))
    again = reingest(tmp_path, out)
    before, after = samples(store), samples(again)
    assert len(after) == len(before)
    for old, new in zip(before, after, strict=True):
        assert new["conversation"] == [
            {"role": "user", "content": prompt_string(old["conversation"])}
        ]
        assert pair(new) == pair(old)
    multi = next(s for s in before if len(s["conversation"]) > 1)
    rendered = prompt_string(multi["conversation"])
    assert rendered.startswith("\n\nHuman: ") and rendered.endswith("\n\nAssistant:")
    again.close()


@pytest.mark.parametrize("suffix", [".jsonl", ".parquet"])
def test_trl_chat_round_trip_keeps_whole_conversations(
    store: Store, tmp_path: Path, suffix: str
) -> None:
    ingest_file(store, shared_file(HH))
    out = tmp_path / f"chat{suffix}"
    export(store, out, ExportOptions(format="trl-chat"))
    again = reingest(tmp_path, out)
    assert [(s["conversation"], pair(s)) for s in samples(again)] == [
        (s["conversation"], pair(s)) for s in samples(store)
    ]
    again.close()


def test_text_lines_decode_to_exactly_the_stored_texts(store: Store, tmp_path: Path) -> None:
    from auditor.model import ResponseIn, Role, SampleIn

    nasty = 'quote " backslash \\ newline \n tab \t nul \x00 bell \x07 del \x7f é 中 \u2028 😀'
    ds = store.add_dataset(name="n", source_path="/x", format="trl", content_hash="h")
    store.add_samples(
        ds,
        [
            SampleIn(
                1,
                [{"role": "user", "content": nasty}],
                [
                    ResponseIn(nasty + "c", Role.CHOSEN, rating=1.5),
                    ResponseIn(nasty + "r", Role.REJECTED, rating=None),
                ],
                record="{}",
            )
        ],
    )
    for fmt in ("trl", "trl-chat"):
        out = tmp_path / f"{fmt}.jsonl"
        export(store, out, ExportOptions(format=fmt))
        expected: dict[str, Any] = {"prompt": nasty, "chosen": nasty + "c", "rejected": nasty + "r"}
        if fmt == "trl-chat":
            expected = {
                "prompt": [{"role": "user", "content": nasty}],
                "chosen": [{"role": "assistant", "content": nasty + "c"}],
                "rejected": [{"role": "assistant", "content": nasty + "r"}],
            }
        expected |= {"score_chosen": 1.5, "score_rejected": None}
        text = out.read_text(encoding="utf-8")
        assert text.count("\n") == 1 and text.endswith("\n")  # one record, one line
        assert json.loads(text) == expected


# -- pairs-all and binarized ---------------------------------------------------------------------


def _alpaca_records() -> list[dict[str, Any]]:
    with gzip.open(shared_file(ALPACA), "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def test_pairs_all_gives_every_pair_whose_annotations_differ(store: Store, tmp_path: Path) -> None:
    ingest_file(store, shared_file(ALPACA))
    out = tmp_path / "pairs.parquet"
    report = export(store, out, ExportOptions(format="pairs-all"))
    expected: Counter[tuple[str, str, str]] = Counter()
    for rec in _alpaca_records():
        comps = rec["completions"]
        for i, a in enumerate(comps):
            for b in comps[i + 1 :]:
                pa, pb = a["preference"], b["preference"]
                if pa is None or pb is None or pa == pb:
                    continue
                hi, lo = (a, b) if pa > pb else (b, a)
                expected[(rec["instruction"], hi["response"], lo["response"])] += 1
    again = reingest(tmp_path, out)
    got = Counter((s["conversation"][0]["content"], *pair(s)) for s in samples(again))
    assert got == expected
    assert report.records_out == sum(expected.values())
    again.close()


def test_binarized_is_best_against_a_lower_other_and_seeded(store: Store, tmp_path: Path) -> None:
    ingest_file(store, shared_file(ALPACA))
    runs = {}
    for seed in (1, 1, 2):
        out = tmp_path / f"bin{seed}.jsonl"
        export(store, out, ExportOptions(format="binarized", seed=seed))
        runs.setdefault(seed, []).append(out.read_bytes())
    assert runs[1][0] == runs[1][1]
    assert runs[1][0] != runs[2][0]

    by_prompt = {r["instruction"]: r["completions"] for r in _alpaca_records()}
    again = reingest(tmp_path, tmp_path / "bin1.jsonl")
    rows = samples(again)
    assert len(rows) == len(by_prompt)  # no instruction has eight equal preferences
    for s in rows:
        comps = by_prompt[s["conversation"][0]["content"]]
        prefs = [c["preference"] for c in comps]
        best = comps[prefs.index(max(prefs))]
        chosen, rejected = pair(s)
        assert chosen == best["response"]
        lower = {c["response"] for c in comps if c["preference"] < best["preference"]}
        assert rejected in lower
    again.close()


# -- selection ---------------------------------------------------------------------------------


def _mapped(store: Store, relative: str = ALPACA) -> int:
    ingest_file(store, shared_file(relative))
    return score_annotations(store).scored


def test_paper_subset_is_the_highavg_region(store: Store, tmp_path: Path) -> None:
    _mapped(store)
    scorer = store.find_scorer(None)
    result = compute_map(store, scorer.id)
    high = {
        int(result.stats.sample_id[i])
        for i in range(result.stats.sample_id.size)
        if result.regions[i] >= 0 and REGION_CODES[result.regions[i]].value == "HighAvg"
    }
    prompts = {s["id"]: s["conversation"][0]["content"] for s in samples(store)}
    out = tmp_path / "paper.jsonl"
    report = export(store, out, ExportOptions(format="trl", paper_subset=True))
    got = [json.loads(line)["prompt"] for line in out.read_text().splitlines()]
    assert sorted(got) == sorted(prompts[i] for i in high)
    assert report.selected == len(high) == round(len(prompts) / 3)
    manifest = json.loads(Path(f"{out}.manifest.json").read_text())
    assert manifest["selection"]["regions"] == ["HighAvg"]
    assert manifest["map"]["thresholds"]["mean"] == pytest.approx(result.thresholds.mean)
    assert manifest["map"]["region_counts"]["HighAvg"] == len(high)


def test_regions_can_be_combined(store: Store, tmp_path: Path) -> None:
    _mapped(store)
    out = tmp_path / "two.jsonl"
    report = export(store, out, ExportOptions(regions=("lowavg", "HighVar")))
    counts = store.region_counts(store.find_scorer(None).id)
    assert report.selected == counts["LowAvg"] + counts["HighVar"] == 805 - counts["HighAvg"]
    with pytest.raises(ExportError, match="unknown region 'middle'"):
        export(store, out, ExportOptions(regions=("middle",)))


def test_random_third_is_seeded_and_deterministic(store: Store, tmp_path: Path) -> None:
    _mapped(store)
    ids = {}
    for name, seed in (("a", 42), ("b", 42), ("c", 7)):
        out = tmp_path / f"{name}.jsonl"
        export(store, out, ExportOptions(format="original", random_third=True, seed=seed))
        ids[name] = [json.loads(line)["instruction"] for line in out.read_text().splitlines()]
    assert ids["a"] == ids["b"]
    assert len(ids["a"]) == round(805 / 3)
    assert set(ids["a"]) != set(ids["c"])
    # the draw is random.Random(seed).sample over the mapped ids in ascending order
    mapped = store.sample_ids()
    prompts = {s["id"]: s["conversation"][0]["content"] for s in samples(store)}
    expected = sorted(random.Random(42).sample(mapped, round(805 / 3)))
    assert ids["a"] == [prompts[i] for i in expected]


def test_dataset_and_reviewed_only_narrow_the_selection(store: Store, tmp_path: Path) -> None:
    ingest_file(store, shared_file(UF_TRL))
    ingest_file(store, shared_file(HH))
    hh_ids = store.sample_ids("harmless-base-test")
    store.decide(hh_ids[3], "keep", "ana")
    store.decide(hh_ids[5], "flip", "ana")
    store.decide(hh_ids[8], "drop", "ben")
    store.decide(store.sample_ids("processed_eval_clean")[0], "keep", "ana")
    out = tmp_path / "reviewed.jsonl"
    report = export(store, out, ExportOptions(dataset="harmless-base-test", reviewed_only=True))
    assert report.selected == 3 and report.records_out == 2
    manifest = json.loads(Path(f"{out}.manifest.json").read_text())
    assert manifest["decisions"]["by_reviewer"] == {
        "ana": {"keep": 1, "flip": 1},
        "ben": {"drop": 1},
    }
    assert [s["name"] for s in manifest["sources"]] == ["harmless-base-test"]
    ignored = export(
        store,
        out,
        ExportOptions(dataset="harmless-base-test", reviewed_only=True, apply_decisions=False),
    )
    assert ignored.records_out == 3 and ignored.decisions == {}
    with pytest.raises(ExportError, match="no dataset named 'nope'"):
        export(store, out, ExportOptions(dataset="nope"))


# -- decisions in the pair formats ---------------------------------------------------------------


def test_flip_drop_and_best_reach_the_trl_rows(store: Store, tmp_path: Path) -> None:
    ingest_file(store, shared_file(UF_TRL))
    ingest_file(store, shared_file(ALPACA))
    before = samples(store)
    pairs_ = [s for s in before if len(s["responses"]) == 2]
    multi = next(s for s in before if len(s["responses"]) == 8)
    store.decide(pairs_[0]["id"], "flip", "ana")
    store.decide(pairs_[1]["id"], "drop", "ana")
    store.decide(multi["id"], "keep", "ana", best_idx=5)
    out = tmp_path / "trl.jsonl"
    export(store, out, ExportOptions(format="trl"))
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == len(before) - 1
    c, r = pair(pairs_[0])
    assert (rows[0]["chosen"], rows[0]["rejected"]) == (r, c)
    assert rows[0]["score_chosen"] == pairs_[0]["responses"][0][2]  # the place's rating
    assert rows[1]["prompt"] == pairs_[2]["conversation"][0]["content"]
    multi_row = next(x for x in rows if x["prompt"] == multi["conversation"][0]["content"])
    assert multi_row["chosen"] == multi["responses"][5][1]
    ratings = [x[2] for x in multi["responses"]]
    worst = min(
        i for i in range(8) if i != 5 and ratings[i] == min(ratings[j] for j in range(8) if j != 5)
    )
    assert multi_row["rejected"] == multi["responses"][worst][1]


def test_rank_by_scorer_uses_the_scorers_scores(store: Store, tmp_path: Path) -> None:
    from auditor.model import ScoreIn

    ingest_file(store, shared_file(ALPACA))
    scorer = store.scorer("reversed", "test", {"kind": "test", "reverse": True})
    # a scorer that ranks every sample's responses in reverse index order
    pending = store.pending_responses(scorer.id)
    store.save_scores(scorer.id, [ScoreIn(p.response_id, float(-p.idx)) for p in pending])
    out = tmp_path / "by-scorer.jsonl"
    export(store, out, ExportOptions(format="trl", rank_by="scorer", scorer="reversed"))
    first = json.loads(out.open().readline())
    s = samples(store)[0]
    assert (first["chosen"], first["rejected"]) == (s["responses"][0][1], s["responses"][7][1])
    assert (first["score_chosen"], first["score_rejected"]) == (0.0, -7.0)


# -- files, atomicity, the manifest ----------------------------------------------------------


def test_manifest_names_sources_scorer_and_counts(store: Store, tmp_path: Path) -> None:
    source = shared_file(ALPACA)
    _mapped(store)
    out = tmp_path / "sub.jsonl"
    options = ExportOptions(format="pairs-all", paper_subset=True)
    report = export(store, out, options)
    m = json.loads(Path(f"{out}.manifest.json").read_text())
    assert m["sources"][0]["content_hash"] == hashlib.sha256(source.read_bytes()).hexdigest()
    assert m["sources"][0]["source_path"] == str(source.resolve())
    assert m["scorer"]["name"] == "annotations" and m["scorer"]["config"]["field"] == "auto"
    assert m["output"]["sha256"] == hashlib.sha256(out.read_bytes()).hexdigest()
    assert m["counts"]["records_out"] == report.records_out == len(out.read_text().splitlines())
    assert m["counts"]["samples_in_scope"] == 805
    assert m["command_line"] == (
        f"auditor export {out} --format pairs-all --db {store.path} --paper-subset"
    )
    assert m["tool"]["version"]


def test_an_interrupted_export_leaves_the_earlier_file(store: Store, tmp_path: Path) -> None:
    ingest_file(store, shared_file(HH))
    out = tmp_path / "clean.jsonl"
    out.write_text("earlier export\n")

    def interrupt(done: int, total: int) -> None:
        if done:  # after the first chunk went to the temporary file
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        export(store, out, ExportOptions(), on_progress=interrupt)
    assert out.read_text() == "earlier export\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "audit.db",
        "audit.db-shm",
        "audit.db-wal",
        "clean.jsonl",
    ]


def test_progress_counts_up_to_the_total(store: Store, tmp_path: Path) -> None:
    ingest_file(store, shared_file(HH))
    calls: list[tuple[int, int]] = []
    export(
        store, tmp_path / "x.jsonl", ExportOptions(), on_progress=lambda d, t: calls.append((d, t))
    )
    assert calls == [(0, 2312), (2000, 2312), (2312, 2312)]


def test_an_input_file_is_never_overwritten(store: Store, tmp_path: Path) -> None:
    source = tmp_path / "data.jsonl"
    source.write_bytes(shared_file(UF_TRL).read_bytes())
    ingest_file(store, source)
    before = source.read_bytes()
    db = store.path
    for target in (source, tmp_path / "." / "data.jsonl", db, Path(f"{db}-wal"), Path(f"{db}-shm")):
        with pytest.raises(ExportError, match="never overwrites its input"):
            export(store, target, ExportOptions(format="original"))
    assert source.read_bytes() == before
    with pytest.raises(ExportError, match="is a folder"):
        export(store, tmp_path, ExportOptions())
    with pytest.raises(ExportError, match=r"drop the \.gz"):
        export(store, tmp_path / "x.parquet.gz", ExportOptions())


# -- formats without shared real data: synthetic records, the same promise ------------------


SYNTHETIC = {
    "trl-chat": {
        "prompt": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "Q{i}"}],
        "chosen": [{"role": "assistant", "content": "good {i}"}],
        "rejected": [{"role": "assistant", "content": "bad {i}"}],
        "score_chosen": 9,
        "score_rejected": 2,
        "chosen_model": "m-good",
        "rejected_model": "m-bad",
    },
    "sharegpt": {
        "conversations": [{"from": "human", "value": "Q{i}"}],
        "chosen": {"from": "gpt", "value": "good {i}"},
        "rejected": {"from": "gpt", "value": "bad {i}"},
    },
    "ultrafeedback": {
        "instruction": "Q{i}",
        "completions": [
            {
                "model": f"m{k}",
                "response": f"answer {k} to {{i}}",
                "annotations": {"helpfulness": {"Rating": str(k + 1), "Rationale": "-"}},
                "fine-grained_score": k + 1.5,
                "overall_score": k,
            }
            for k in range(4)
        ],
    },
}


def _write_synthetic(path: Path, fmt: str, n: int = 6) -> None:
    template = json.dumps(SYNTHETIC[fmt], ensure_ascii=False)
    path.write_text(
        "".join(template.replace("{i}", str(i)) + "\n" for i in range(n)), encoding="utf-8"
    )


@pytest.mark.parametrize("fmt", ["trl-chat", "sharegpt"])
def test_synthetic_pair_formats_flip_in_their_original_records(
    store: Store, tmp_path: Path, fmt: str
) -> None:
    source = tmp_path / f"{fmt}.jsonl"
    _write_synthetic(source, fmt)
    ingest_file(store, source)
    ids = store.sample_ids()
    store.decide(ids[1], "flip", "ana")
    out = tmp_path / "out.jsonl"
    export(store, out, ExportOptions(format="original"))
    lines = out.read_text().splitlines()
    assert lines[0] == source.read_text().splitlines()[0]
    again = reingest(tmp_path, out)
    before, after = samples(store), samples(again)
    assert pair(after[1]) == tuple(reversed(pair(before[1])))
    assert [s["conversation"] for s in after] == [s["conversation"] for s in before]
    if fmt == "trl-chat":
        flipped = json.loads(lines[1])
        assert flipped["chosen_model"] == "m-bad" and flipped["score_chosen"] == 9
    again.close()


def test_ultrafeedback_best_choice_reaches_the_pair_formats_not_the_record(
    store: Store, tmp_path: Path
) -> None:
    source = tmp_path / "uf.jsonl"
    _write_synthetic(source, "ultrafeedback")
    ingest_file(store, source)
    first = store.sample_ids()[0]
    store.decide(first, "keep", "ana", best_idx=0)
    original = tmp_path / "uf-out.jsonl"
    report = export(store, original, ExportOptions(format="original"))
    assert original.read_bytes() == source.read_bytes()
    assert any("best response in original records" in w for w in report.warnings)
    assert report.decisions == {}  # counted as not applied, never as applied
    store.decide(store.sample_ids()[1], "flip", "ben")  # a multi-response sample has no label
    pairs_out = tmp_path / "pairs.jsonl"
    report = export(store, pairs_out, ExportOptions(format="pairs-all"))
    assert report.decisions == {"best": 1}
    manifest = json.loads(Path(f"{pairs_out}.manifest.json").read_text())
    assert manifest["decisions"]["not_applied"] == {"flip_without_label": 1}
    assert manifest["decisions"]["by_reviewer"] == {"ana": {"best": 1}}
    rows = [json.loads(line) for line in pairs_out.read_text().splitlines()]
    q0 = [r for r in rows if r["prompt"] == "Q0"]
    # the named best (answer 0, the lowest rated) beats the three others; they keep their order
    assert sorted((r["chosen"], r["rejected"]) for r in q0) == sorted(
        [("answer 0 to 0", f"answer {k} to 0") for k in (1, 2, 3)]
        + [(f"answer {a} to 0", f"answer {b} to 0") for a, b in ((2, 1), (3, 1), (3, 2))]
    )
    q1 = [r for r in rows if r["prompt"] == "Q1"]
    assert len(q1) == 6 and all(r["score_chosen"] > r["score_rejected"] for r in q1)


def test_a_mapped_dataset_flips_at_its_map_paths(store: Store, tmp_path: Path) -> None:
    source = tmp_path / "qa.jsonl"
    source.write_text(
        "".join(
            json.dumps(
                {"question": f"Q{i}", "answers": [{"text": f"good {i}"}, {"text": f"bad {i}"}]}
            )
            + "\n"
            for i in range(4)
        )
    )
    spec = "prompt=question,chosen=answers.0.text,rejected=answers.1.text"
    ingest_file(store, source, map_spec=spec)
    store.decide(store.sample_ids()[2], "flip", "ana")
    out = tmp_path / "out.jsonl"
    export(store, out, ExportOptions(format="original"))
    third = json.loads(out.read_text().splitlines()[2])
    assert third == {"question": "Q2", "answers": [{"text": "bad 2"}, {"text": "good 2"}]}


def test_trl_to_a_json_array_reads_back(store: Store, tmp_path: Path) -> None:
    ingest_file(store, shared_file(UF_TRL))
    out = tmp_path / "trl.json.gz"
    export(store, out, ExportOptions(format="trl"))
    again = reingest(tmp_path, out)
    assert [pair(s) for s in samples(again)] == [pair(s) for s in samples(store)]
    again.close()
