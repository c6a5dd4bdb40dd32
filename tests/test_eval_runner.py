"""The runner end to end on the seed set (ours, naive, bm25), compare, calibrate and the CLI edges.

One run of the whole seed set is shared by the module: it only reads the results afterwards.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from eval import compare, questions, runner
from eval.__main__ import main
from qa import reader
from qa.assistant import Assistant
from qa.config import Settings
from qa.errors import InputError

ROOT = Path(__file__).resolve().parent.parent
SEED_SET = ROOT / "eval" / "questions" / "seed.jsonl"
SEED_DOC = ROOT / "seeds" / "000_30343400e31c82a3.txt"


@pytest.fixture(scope="module")
def seed_set():
    return questions.load(SEED_SET, strict=True)


@pytest.fixture(scope="module")
def seed_run(tmp_path_factory, seed_set, embedder):
    base = tmp_path_factory.mktemp("seed-run")
    out, index = base / "run", base / "index"
    result = runner.run(
        seed_set,
        docs=[SEED_DOC],
        out=out,
        baselines=("naive", "bm25"),
        index_dir=index,
        embedder=embedder,
        progress=False,
    )
    return out, index, result


def _records(out: Path, name: str = "results.jsonl") -> list[dict]:
    return [json.loads(line) for line in (out / name).read_text(encoding="utf-8").splitlines()]


def test_run_writes_results_metrics_and_reports(seed_run, seed_set):
    out, _, _ = seed_run
    for name in ("results.jsonl", "results-naive.jsonl", "results-bm25.jsonl"):
        recs = _records(out, name)
        assert [r["id"] for r in recs] == [q.id for q in seed_set.questions]
        assert all(r["answer"]["question"] and "scores" in r for r in recs)
    assert json.loads((out / "metrics.json").read_text())["systems"].keys() == {"ours", "naive", "bm25"}
    for png in ("recall_at_k.png", "scores.png", "latency.png", "metrics.png", "risk_coverage.png"):
        assert (out / png).read_bytes()[:4] == b"\x89PNG"
    html = (out / "report.html").read_text(encoding="utf-8")
    md = (out / "report.md").read_text(encoding="utf-8")
    assert html.count("data:image/png;base64,") == 5
    assert "![recall@k by language](recall_at_k.png)" in md and "| citation_precision |" in md
    assert "Worst questions" in md


def test_every_quote_equals_the_document_at_its_offsets(seed_run):
    _, _, result = seed_run
    for system, summary in result["systems"].items():
        assert summary["overall"]["citations_checked"] > 0, system
        assert summary["overall"]["quote_mismatches"] == 0, system


def test_metrics_are_split_by_language_and_category_with_counts(seed_run, seed_set):
    _, _, result = seed_run
    ours = result["systems"]["ours"]
    n_unanswerable = sum(q.unanswerable for q in seed_set.questions)
    assert ours["by_category"]["unanswerable"]["abstain_unanswerable"]["n"] == n_unanswerable
    assert ours["overall"]["false_abstention"]["n"] == len(seed_set.questions) - n_unanswerable
    assert ours["by_category"]["follow-up"]["questions"] == sum(1 for q in seed_set.questions if q.follows)
    assert (
        ours["by_lang"]["en"]["questions"]
        == ours["by_lang"]["ar"]["questions"]
        == len(seed_set.questions) // 2
    )
    assert {"retrieve", "answer", "total"} <= ours["latency_ms"].keys()
    assert result["run"]["peak_memory_mb"] > 0


def test_every_figure_carries_its_interval_and_the_run_its_conditions(seed_run):
    out, _, result = seed_run
    ours = result["systems"]["ours"]
    for name in ("hit@1", "false_abstention", "abstain_unanswerable"):  # rates: Wilson
        cell = ours["overall"][name]
        assert cell["low"] <= cell["value"] <= cell["high"] and cell["high"] - cell["low"] > 0.01, name
    mrr = ours["overall"]["mrr"]  # a mean: bootstrap
    assert mrr["low"] <= mrr["value"] <= mrr["high"]
    p50 = ours["latency_ms"]["total"]["p50"]
    assert p50["low"] <= p50["value"] <= p50["high"] <= ours["latency_ms"]["total"]["max"]
    run = result["run"]
    assert run["machine"]["start"]["cpus"] >= 1 and len(run["machine"]["end"]["load_avg"]) == 3
    assert (
        run["models"]["qwen2.5-1.5b"][""]
        == "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"
    )
    assert run["all_settings"]["llm_timeout_s"] > 0 and "api_keys" not in run["all_settings"]
    assert result["timeouts"]["answers"] == len(result["timeouts"]["ids"])
    curves = result["selective"]["abstention"]["curves"]
    assert (
        curves["evidence score"]["n"] == len(seed_run_records(out))
        and 0 <= curves["evidence score"]["aurc"] <= 1
    )
    md = (out / "report.md").read_text(encoding="utf-8")
    assert "## Risk–coverage" in md and "## Run conditions" in md and "risk_coverage.png" in md
    assert (out / "risk_coverage.png").read_bytes()[:4] == b"\x89PNG"


def seed_run_records(out: Path) -> list[dict]:
    return [r for r in _records(out) if r.get("answer")]


@pytest.mark.slow
def test_a_run_whose_replies_hit_the_time_cap_says_so(seed_set, embedder, tmp_path):
    # Reading the prompt takes far longer than 10 ms: every reader reply is cut at the cap.
    result = runner.run(
        seed_set.limit(2),
        docs=[SEED_DOC],
        out=tmp_path / "run",
        settings_overrides={"llm_timeout_s": 0.01, "short_answer": "on"},
        embedder=embedder,
        progress=False,
    )
    recs = _records(tmp_path / "run")
    assert recs and all(r["answer"]["timeouts"] == ["reader"] for r in recs)
    assert all(r["answer"]["note"] == reader.NOTES["timeout"].format(limit=0.01) for r in recs)
    assert result["timeouts"] == {"cap_s": 0.01, "answers": len(recs), "ids": [r["id"] for r in recs]}
    assert result["systems"]["ours"]["overall"]["timed_out"]["value"] == 1.0
    assert "time cap" in result["warnings"][0] and "llm_timeout_s" in result["warnings"][0]
    top = (tmp_path / "run" / "report.md").read_text(encoding="utf-8").split("## Metrics")[0]
    assert "**Warning.**" in top and "time cap" in top


def test_our_pipeline_retrieves_the_evidence_and_cites_more_precisely_than_naive(seed_run):
    _, _, result = seed_run
    ours, naive = result["systems"]["ours"]["overall"], result["systems"]["naive"]["overall"]
    assert ours["hit@5"]["value"] >= 0.8
    assert ours["citation_precision"]["value"] > naive["citation_precision"]["value"]


def test_answers_are_what_assistant_ask_returns(seed_run, embedder):
    out, index, _ = seed_run
    # As the runner asks: no automatic translations for English readers (no metric scores them).
    settings = Settings(chroma_path=index, chroma_url=None, collection="eval", auto_translate=False)
    assistant = Assistant(settings)
    assistant.embedder = embedder
    for rec in [r for r in _records(out) if not r["follows"]][:4]:
        asked = assistant.ask(rec["question"]).to_dict()
        for key in ("answer", "abstained", "citations", "closest"):
            assert asked[key] == rec["answer"][key], (rec["id"], key)


def test_follow_ups_are_asked_with_the_earlier_turns(seed_run):
    out, _, _ = seed_run
    recs = {r["id"]: r for r in _records(out)}
    follow_ups = [r for r in recs.values() if r["follows"]]
    assert follow_ups
    for r in follow_ups:
        parent = recs[r["follows"]]
        assert r["history"][-1] == [parent["question"], parent["answer"]["answer"]]
        assert len(r["history"]) == len(parent["history"]) + 1


def test_compare_reports_metric_changes_and_flipped_questions(seed_run, seed_set, embedder, tmp_path):
    out, _, _ = seed_run
    # Same questions with a threshold nothing reaches: every answerable question flips to wrong.
    other = tmp_path / "strict"
    runner.run(
        seed_set,
        docs=[SEED_DOC],
        out=other,
        limit=10,
        settings_overrides={"abstain_threshold": "5", "abstain_threshold_ar": "5"},
        embedder=embedder,
        progress=False,
        report=False,
    )
    diff = compare.compare(out, other)
    ours = diff["systems"]["ours"]
    rows = {r["metric"]: r for r in ours["metrics"]}
    assert rows["false_abstention"]["b"] == 1.0 and rows["false_abstention"]["diff"] > 0
    assert ours["shared_questions"] == 10
    flipped = {q["id"] for q in ours["right_to_wrong"]}
    assert flipped and all(not q.unanswerable for q in seed_set.questions if q.id in flipped)
    assert all(
        q.unanswerable for q in seed_set.questions if q.id in {x["id"] for x in ours["wrong_to_right"]}
    )
    compare.write(diff, tmp_path)
    assert "Right → wrong" in (tmp_path / "compare.md").read_text(encoding="utf-8")


def test_calibrate_finds_the_best_threshold_by_an_oracle(seed_set, embedder, tmp_path):
    got = runner.calibrate(seed_set, docs=[SEED_DOC], out=tmp_path, embedder=embedder, progress=False)
    ans = [r["score"] for r in got["scores"] if not r["unanswerable"]]
    una = [r["score"] for r in got["scores"] if r["unanswerable"]]

    def balanced(t: float) -> float:  # the oracle: counted directly, not through eval.metrics
        return (sum(x >= t for x in ans) / len(ans) + sum(x < t for x in una) / len(una)) / 2

    # Every distinct score (and just above the highest) is a candidate cut: the best of them is the optimum.
    candidates = sorted({*ans, *una, max(ans + una) + 1e-6})
    best = max(balanced(t) for t in candidates)
    assert got["balanced_accuracy"] == pytest.approx(best)
    assert balanced(got["threshold"]) == pytest.approx(best)
    assert got["abstains_unanswerable"] == sum(x < got["threshold"] for x in una)
    assert (tmp_path / "calibration.png").read_bytes()[:4] == b"\x89PNG"
    assert json.loads((tmp_path / "calibration.json").read_text())["n_unanswerable"] >= 8


def test_squad_json_is_indexed_and_asked(embedder, tmp_path):
    text = SEED_DOC.read_text(encoding="utf-8").split("\n")
    data = {
        "data": [
            {
                "title": "seed",
                "paragraphs": [
                    {
                        "context": text[5],
                        "qas": [
                            {
                                "id": "peskov",
                                "question": "Who is the Kremlin spokesman?",
                                "answers": [
                                    {"text": "دميتري بسكوف", "answer_start": text[5].index("دميتري بسكوف")}
                                ],
                            }
                        ],
                    },
                    {"context": text[0], "qas": []},
                ],
            }
        ]
    }
    path = tmp_path / "squad.json"
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    result = runner.run(questions.load(path), out=tmp_path / "run", embedder=embedder, progress=False)
    assert (tmp_path / "run" / "docs" / "seed.txt").is_file()
    assert result["run"]["documents"] == ["seed.txt"]
    rec = _records(tmp_path / "run")[0]
    assert rec["gold_spans"] and rec["scores"]["hit@5"] == 1.0
    assert result["systems"]["ours"]["overall"]["quote_mismatches"] == 0


def test_cli_turns_bad_input_into_one_sentence(tmp_path, capsys):
    assert main(["run", str(tmp_path / "missing.jsonl"), "--docs", str(SEED_DOC)]) == 2
    assert main(["compare", str(tmp_path), str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all(line.startswith("error: ") for line in err)
    assert "does not exist" in err[0] and "not a run folder" in err[1]


# ---------------------------------------------------------------------------------------------
# Resuming a stopped run (fast lane: hash vectors, quote only; the journal is plumbing)

FAST_RUN = {"embedding_model": "hash", "second_embedding_model": "hash2", "short_answer": "off"}


def _without_timings(value):
    if isinstance(value, dict):
        return {k: _without_timings(v) for k, v in value.items() if k not in ("timings_ms", "latency_ms")}
    if isinstance(value, list):
        return [_without_timings(v) for v in value]
    return value


def test_a_stopped_run_resumes_to_the_same_results(seed_set, tmp_path, monkeypatch):
    """Stopped after three answers (as Ctrl-C or the end of a session would), started again with the same
    arguments: only the rest is asked, and results.jsonl equals an uninterrupted run's."""
    six = seed_set.limit(6)
    whole = tmp_path / "whole"
    runner.run(six, docs=[SEED_DOC], out=whole, settings_overrides=FAST_RUN, progress=False, report=False)

    real, asked = runner.ask_ours, []

    def stops_after_three(*args, **kwargs):
        if len(asked) == 3:
            raise KeyboardInterrupt
        asked.append(args[1])
        return real(*args, **kwargs)

    monkeypatch.setattr(runner, "ask_ours", stops_after_three)
    stopped = tmp_path / "stopped"
    with pytest.raises(KeyboardInterrupt):
        runner.run(
            six, docs=[SEED_DOC], out=stopped, settings_overrides=FAST_RUN, progress=False, report=False
        )
    assert not (stopped / "results.jsonl").exists()
    journalled = (stopped / runner.JOURNAL).read_text(encoding="utf-8").splitlines()
    assert len(journalled) == 1 + 3  # the configuration, then one line an answer

    asked.clear()
    monkeypatch.setattr(runner, "ask_ours", lambda *a, **kw: (asked.append(a[1]), real(*a, **kw))[1])
    runner.run(six, docs=[SEED_DOC], out=stopped, settings_overrides=FAST_RUN, progress=False, report=False)
    assert len(asked) == len(six.questions) - 3  # the first three were not asked again
    assert [_without_timings(r) for r in _records(stopped)] == [_without_timings(r) for r in _records(whole)]


def test_a_journal_of_another_configuration_is_refused_unless_fresh(seed_set, tmp_path):
    out = tmp_path / "run"
    two = seed_set.limit(2)
    runner.run(two, docs=[SEED_DOC], out=out, settings_overrides=FAST_RUN, progress=False, report=False)
    other = {**FAST_RUN, "k": "2"}
    with pytest.raises(InputError, match="another configuration"):
        runner.run(two, docs=[SEED_DOC], out=out, settings_overrides=other, progress=False, report=False)
    runner.run(
        two, docs=[SEED_DOC], out=out, settings_overrides=other, progress=False, report=False, fresh=True
    )
    head = json.loads((out / runner.JOURNAL).read_text(encoding="utf-8").splitlines()[0])["journal"]
    assert head["overrides"]["k"] == "2"


def test_signals_and_certify_commands(seed_set, tmp_path, capsys):
    """A run's journal becomes compact signal lines (one per question, merged by key and id, so a second
    merge replaces and adds nothing); certify says in one line a language it cannot certify, and an
    empty signals file or a folder that is no run is one sentence."""
    out, to = tmp_path / "run", tmp_path / "signals.jsonl"
    runner.run(
        seed_set.limit(3), docs=[SEED_DOC], out=out, settings_overrides=FAST_RUN, progress=False, report=False
    )
    key = ["--set", "llm_backend=scripted"]
    assert main(["signals", str(out), "--to", str(to), *key]) == 0
    assert main(["signals", str(out), "--to", str(to), *key]) == 0
    lines = [json.loads(line) for line in to.read_text(encoding="utf-8").splitlines()]
    assert sorted(r["id"] for r in lines) == sorted(q.id for q in seed_set.limit(3).questions)
    assert all(r["key"].startswith("scripted:") and r["features"] is None and not r["shown"] for r in lines)
    printed = capsys.readouterr().out
    assert "3 added, 0 replaced" in printed and "0 added, 3 replaced" in printed
    assert main(["certify", "--signals", str(to), "--dry-run", *key]) == 0
    assert "nothing certified: too few labelled short answers" in capsys.readouterr().out
    assert main(["certify", "--signals", str(tmp_path / "none.jsonl"), "--dry-run"]) == 2
    assert main(["signals", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and "No signals under" in err[0] and "no journal.jsonl" in err[1]
