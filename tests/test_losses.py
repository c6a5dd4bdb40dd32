"""The loss table (eval/losses.py): each stage's rule on planted spans, the calibration set's parts,
and the script end to end on a small slice (fast lane: the hash embedder, plumbing, not quality)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from eval import losses
from eval.__main__ import main

ROOT = Path(__file__).resolve().parent.parent
SEED_SET = ROOT / "eval" / "questions" / "seed.jsonl"
SEED_DOC = ROOT / "seeds" / "000_30343400e31c82a3.txt"

# One document, three sentences of one chunk: [0, 10), [11, 20), [21, 30).
HITS = [("d", 0, 30)]
SENTENCES = [("d", 0, 10), ("d", 11, 20), ("d", 21, 30)]


def _stage(gold, evidence, cited, *, hits=HITS, abstained=False, depth=3):
    return losses.classify(gold, hits, evidence, cited, abstained=abstained, depth=depth)


def test_each_stage_is_the_first_that_lost_the_gold_span():
    first, second, third = SENTENCES
    assert _stage(("d", 12, 15), SENTENCES, [second])["stage"] == "cited"
    assert _stage(("d", 12, 15), SENTENCES, [second], abstained=True)["stage"] == "abstained"
    assert _stage(("d", 40, 45), SENTENCES, [first])["stage"] == "passage"
    # spread over the first two sentences, only one cited; both cited is no loss
    assert _stage(("d", 5, 15), SENTENCES, [first])["stage"] == "two_sentences"
    assert _stage(("d", 5, 15), SENTENCES, [first, second])["stage"] == "cited"
    # its sentence ranked third: among the evidence at depth 3, not at depth 2
    ranked = [first, third, second]
    assert _stage(("d", 12, 15), ranked, [first])["stage"] == "not_cited"
    assert _stage(("d", 12, 15), ranked, [first], depth=2)["stage"] == "not_evidence"
    assert _stage(("d", 12, 15), ranked, [first], depth=2)["rank"] == 3


def test_precision_counts_the_cited_sentences_that_hold_the_answer_and_their_subject():
    first, second, third = SENTENCES
    row = _stage(("d", 12, 15), SENTENCES, [first, second])
    assert row["precision"] == 0.5  # the first does not hold it
    assert row["precision_support"] == 1.0  # but it is the sentence right before the one that does
    row = _stage(("d", 12, 15), SENTENCES, [second, third])
    assert row["precision"] == 0.5 and row["precision_support"] == 0.5  # after it: no support
    assert _stage(("d", 12, 15), SENTENCES, [], abstained=True)["precision"] is None


def test_calibration_parts_are_fixed_by_the_article_id_and_about_a_third_each():
    ids = [f"mlqac_{i:03d}" for i in range(300)]
    parts = [losses.calib_part(a) for a in ids]
    assert parts == [losses.calib_part(a) for a in ids]
    for part in losses.PARTS:
        assert 70 <= parts.count(part) <= 130


@pytest.fixture
def fast_env(monkeypatch, tmp_path):
    for key, value in {
        "QA_EMBEDDING_MODEL": "hash",
        "QA_SECOND_EMBEDDING_MODEL": "hash2",
        "QA_LLM_BACKEND": "scripted",
        "QA_CHROMA_PATH": str(tmp_path / "chroma"),
    }.items():
        monkeypatch.setenv(key, value)


def test_the_loss_script_runs_on_a_small_slice(fast_env, tmp_path, capsys):
    out = tmp_path / "losses"
    code = main(
        [
            "losses",
            str(SEED_SET),
            "--docs",
            str(SEED_DOC),
            "--limit",
            "12",
            "--out",
            str(out),
            "--index",
            str(tmp_path / "index"),
            "--variant",
            "mmr:cite_redundancy_weight=0.5,cite_follow=true",
            "--quiet",
        ]
    )
    assert code == 0
    result = json.loads((out / "losses.json").read_text(encoding="utf-8"))
    assert list(result["variants"]) == ["shipped", "mmr"]
    for variant in result["variants"].values():
        records = variant["records"]
        assert 0 < len(records) <= 12
        assert all(r["stage"] in losses.STAGES for r in records)
        overall = next(r for r in variant["table"] if r["lang"] == "all")
        assert overall["n"] == len(records) == sum(overall[s] for s in losses.STAGES)
        assert overall["recall"]["value"] == overall["cited"] / overall["n"]
    assert result["paired"]["mmr"]["n"] == len(result["variants"]["shipped"]["records"])
    md = (out / "losses.md").read_text(encoding="utf-8")
    assert "passage not retrieved" in md and "mmr −" in md
    assert "wrote" in capsys.readouterr().out


def test_a_bad_variant_is_one_sentence(fast_env, tmp_path, capsys):
    code = main(["losses", str(SEED_SET), "--docs", str(SEED_DOC), "--variant", "oops", "--quiet"])
    assert code == 2
    err = capsys.readouterr().err
    assert "--variant expects" in err and "Traceback" not in err
