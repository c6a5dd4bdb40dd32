"""Intervals, paired tests and risk–coverage (eval/stats.py, eval/selective.py) against worked values.

Wilson intervals are checked against Newcombe (1998, Stat. Med. 17:857, Table I) and the closed
form; the bootstrap against the normal theory it approximates for large samples; McNemar against
the binomial sum written out; the risk–coverage area against the mean risk over prefixes.
"""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import numpy as np
import pytest

from eval import compare, metrics, selective, stats
from qa.errors import InputError


def wilson_closed_form(k: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    """The oracle: Wilson (1927), written out."""
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return centre - half, centre + half


@pytest.mark.parametrize(
    ("k", "n", "low", "high"),
    [(81, 263, 0.2553, 0.3662), (15, 148, 0.0624, 0.1605), (0, 20, 0.0, 0.1611), (1, 29, 0.0061, 0.1718)],
)
def test_wilson_matches_newcombe_1998(k, n, low, high):
    got = stats.wilson(k, n)
    assert got == pytest.approx((low, high), abs=5e-5)
    assert got == pytest.approx(wilson_closed_form(k, n), abs=1e-9)


def test_wilson_of_the_issue_example_and_of_nothing():
    # 17 of 27 English questions: 63%, and the 70% target is inside the interval.
    low, high = stats.wilson(17, 27)
    assert (round(low, 2), round(high, 2)) == (0.44, 0.78) and low < 0.70 < high
    assert stats.wilson(0, 0) == (None, None)
    with pytest.raises(ValueError):
        stats.wilson(5, 3)


def test_bootstrap_of_a_mean_agrees_with_normal_theory_on_a_large_sample():
    rng = random.Random(7)
    values = [rng.gauss(0.6, 0.2) for _ in range(400)]
    mean, se = float(np.mean(values)), float(np.std(values, ddof=1)) / math.sqrt(len(values))
    low, high = stats.bootstrap(values)
    assert low == pytest.approx(mean - 1.96 * se, abs=0.25 * se)
    assert high == pytest.approx(mean + 1.96 * se, abs=0.25 * se)


def test_bootstrap_over_articles_is_wider_when_an_articles_questions_agree():
    # 12 articles of 8 questions; every question of an article scores the same: 8 copies of 12 values.
    article_scores = [0.0, 1.0, 0.2, 0.9, 0.4, 0.7, 0.1, 0.8, 0.5, 0.6, 0.3, 1.0]
    values = [s for s in article_scores for _ in range(8)]
    groups = [f"a{i}" for i in range(12) for _ in range(8)]
    by_question = stats.bootstrap(values)
    by_article = stats.bootstrap(values, groups=groups)
    width = lambda ci: ci[1] - ci[0]  # noqa: E731
    assert width(by_article) > 2 * width(by_question)
    # The cluster interval is the interval of the 12 article means: what 12 independent units give.
    assert width(by_article) == pytest.approx(width(stats.bootstrap(article_scores)), rel=0.25)


def test_few_articles_resample_questions_and_results_repeat():
    values = [0.1, 0.5, 0.9, 0.3, 0.7, 0.2]
    few = ["a", "a", "b", "b", "c", "c"]  # below MIN_CLUSTERS
    assert stats.bootstrap(values, groups=few) == stats.bootstrap(values) == stats.bootstrap(values)
    assert stats.bootstrap([0.5]) == (None, None)
    assert stats.bootstrap([0.5, 0.5, 0.5]) == (0.5, 0.5)


def test_bootstrap_bounds_barely_move_between_seeds(monkeypatch):
    # The RESAMPLES constant's claim: at 68 questions the 95% bounds move by well under 0.01.
    rng = random.Random(3)
    values = [rng.random() for _ in range(68)]
    bounds = []
    for seed in range(5):
        monkeypatch.setattr(stats, "SEED", seed)
        bounds.append(stats.bootstrap(values))
    lows, highs = zip(*bounds)
    assert max(lows) - min(lows) < 0.01 and max(highs) - min(highs) < 0.01


def test_percentile_summary_uses_the_same_percentile_as_the_report():
    rng = random.Random(1)
    for n in (1, 2, 5, 37):
        values = [rng.uniform(10, 900) for _ in range(n)]
        for q in (50, 95):
            assert stats.percentile_summary(values, q)["value"] == pytest.approx(
                metrics.percentile(values, q)
            )
    cell = stats.percentile_summary([100.0 + i for i in range(50)], 50)
    assert cell["low"] < cell["value"] < cell["high"] and cell["n"] == 50


def test_summary_refuses_a_rate_that_is_not_zero_or_one():
    assert stats.summary([1, 0, None, 1], kind="rate") == {
        "value": 2 / 3,
        "low": pytest.approx(wilson_closed_form(2, 3)[0]),
        "high": pytest.approx(wilson_closed_form(2, 3)[1]),
        "n": 3,
        "clusters": None,
    }
    with pytest.raises(ValueError):
        stats.summary([0.5, 1.0], kind="rate")
    with pytest.raises(ValueError):
        stats.summary([1.0, 0.0, 1.0], kind="mean", groups=["a"])  # one group for three values
    with pytest.raises(ValueError):
        stats.bootstrap([0.1, float("nan"), 0.3])


def test_a_clustered_rate_gets_the_wilson_interval_of_its_effective_count():
    # 10 articles of 8 questions, every question of an article alike: the design effect is
    # (n - 1) / (g - 1) = 79 / 9 (the cluster-robust variance over the independent one, worked out).
    values = [float(a % 2) for a in range(10) for _ in range(8)]
    groups = [f"a{a}" for a in range(10) for _ in range(8)]
    assert stats.design_effect(values, groups) == pytest.approx(79 / 9)
    cell = stats.summary(values, kind="rate", groups=groups)
    n_eff = 80 / (79 / 9)
    low, high = wilson_closed_form(0.5 * n_eff, n_eff)
    assert (cell["low"], cell["high"], cell["clusters"]) == (pytest.approx(low), pytest.approx(high), 10)
    assert cell["high"] - cell["low"] > 2.5 * (stats.wilson(40, 80)[1] - stats.wilson(40, 80)[0])
    # Every article with the same share: no clustering to correct for; too few articles: none either.
    balanced = [float(i % 2) for i in range(80)]
    assert stats.design_effect(balanced, groups) == 1.0
    assert stats.summary(values[:24], kind="rate", groups=groups[:24])["clusters"] is None


def test_mcnemar_exact_on_a_constructed_pair():
    # 17 questions: 5 right in both, 10 right only in B, 2 right only in A.
    a = [True] * 5 + [False] * 10 + [True] * 2
    b = [True] * 5 + [True] * 10 + [False] * 2
    got = stats.mcnemar(a, b)
    oracle = 2 * sum(math.comb(12, i) for i in range(3)) / 2**12  # 2 * P(X <= 2 | 12, 1/2)
    assert (got["a_only"], got["b_only"]) == (2, 10)
    assert got["p_value"] == pytest.approx(oracle) == pytest.approx(0.0386, abs=1e-4)
    assert stats.verdict(p_value=got["p_value"], diff=8 / 17) == "better"
    assert stats.verdict(p_value=got["p_value"], diff=8 / 17, higher_is_better=False) == "worse"
    assert stats.mcnemar(a, a)["p_value"] == 1.0
    # 6 against 3 discordant: not significant.
    even = stats.mcnemar([True] * 6 + [False] * 3, [False] * 6 + [True] * 3)
    assert stats.verdict(p_value=even["p_value"], diff=-3 / 9) == "no significant difference"
    assert stats.verdict(p_value=0.01, diff=float("nan")) == "–"
    assert stats.verdict(p_value=0.05, diff=0.1) == "no significant difference"  # p < 0.05 is needed


def test_paired_bootstrap_sees_a_small_shift_that_unpaired_intervals_hide():
    rng = random.Random(11)
    a = [rng.uniform(0, 1) for _ in range(60)]
    b = [x + 0.03 + rng.gauss(0, 0.01) for x in a]
    paired = stats.paired_bootstrap(a, b)
    assert 0.02 < paired["low"] < paired["diff"] < paired["high"] < 0.04
    assert stats.verdict(low=paired["low"], high=paired["high"], diff=paired["diff"]) == "better"
    # Each run's own interval overlaps the other's: unpaired, the shift would look like noise.
    ia, ib = stats.bootstrap(a), stats.bootstrap(b)
    assert ia[1] > ib[0]
    noise = stats.paired_bootstrap(a, [x + rng.gauss(0, 0.05) for x in a])
    assert noise["low"] < 0 < noise["high"]
    shift = stats.paired_bootstrap([float(i) for i in range(12)], [i + 1.0 for i in range(12)])
    assert (shift["diff"], shift["low"], shift["high"]) == (1.0, 1.0, 1.0)
    few = stats.paired_bootstrap([0.5, 0.6, 0.7], [0.55, 0.62, 0.75])  # under MIN_PAIRS: no interval
    assert few["low"] is None and stats.verdict(low=few["low"], high=few["high"], diff=few["diff"]) == "–"


# ---------------------------------------------------------------------------------------------
# Risk–coverage


def test_risk_coverage_curve_and_area_on_a_worked_example():
    points = selective.curve([0.9, 0.8, 0.7, 0.6], [False, True, False, True])
    assert [(p["coverage"], p["risk"]) for p in points] == [
        (0.25, 0.0),
        (0.5, 0.5),
        (0.75, 1 / 3),
        (1.0, 0.5),
    ]
    # Without ties the area is the mean risk over the top-i prefixes.
    assert selective.aurc(points) == pytest.approx((0 + 1 / 2 + 1 / 3 + 1 / 2) / 4)


def test_tied_confidences_enter_together_and_a_better_ordering_has_less_area():
    tied = selective.curve([1.0, 1.0, 0.5], [True, False, False])
    assert [(p["answered"], p["risk"]) for p in tied] == [(2, 0.5), (3, 1 / 3)]
    wrong = [False] * 6 + [True] * 4
    good = selective.aurc(selective.curve(list(range(10, 0, -1)), wrong))
    bad = selective.aurc(selective.curve(list(range(1, 11)), wrong))
    assert good < 0.4 < bad
    assert selective.e_aurc(selective.curve(list(range(10, 0, -1)), wrong), wrong) == pytest.approx(0.0)
    with pytest.raises(ValueError):
        selective.curve([0.9, float("nan"), 0.5], [True, False, True])


def test_shipped_point_carries_a_wilson_interval_on_its_risk():
    point = selective.operating_point([True] * 20 + [False] * 5, [True] * 2 + [False] * 18 + [True] * 5)
    assert (point["coverage"], point["risk"], point["answered"]) == (0.8, 0.1, 20)
    assert (point["risk_low"], point["risk_high"]) == pytest.approx(wilson_closed_form(2, 20))


# ---------------------------------------------------------------------------------------------
# Comparing two constructed runs


def _record(i: int, *, right: bool, f1: float, doc: str) -> dict:
    return {
        "id": f"q{i}",
        "question": f"question {i}?",
        "lang": "en",
        "categories": [],
        "unanswerable": False,
        "doc": doc,
        "answer": {"answer": "x", "abstained": False, "timings_ms": {"total": 100.0 + i}, "timeouts": []},
        "scores": {"hit@1": float(right), "citation_recall": float(right), "f1": f1},
    }


def _write_run(folder: Path, records: list[dict]) -> None:
    folder.mkdir(parents=True)
    (folder / "results.jsonl").write_text("\n".join(json.dumps(r) for r in records), encoding="utf-8")
    result = {"run": {}, "systems": {"ours": metrics.summarise(records)}, "warnings": []}
    (folder / "metrics.json").write_text(json.dumps(result), encoding="utf-8")


def _constructed_pair(tmp_path: Path, *, articles: int) -> Path:
    """Runs a and b of 40 questions over `articles` articles: B gets 12 questions right that A
    missed and loses 1; B's F1 is A's + 0.1 everywhere; timings identical."""
    docs = [f"article-{i % articles}" for i in range(40)]
    a_right = [i % 2 == 0 for i in range(40)]
    b_right = list(a_right)
    for i in range(1, 25, 2):
        b_right[i] = True
    b_right[0] = False
    rng = random.Random(5)
    f1 = [rng.uniform(0, 0.8) for _ in range(40)]
    _write_run(tmp_path / "a", [_record(i, right=a_right[i], f1=f1[i], doc=docs[i]) for i in range(40)])
    _write_run(tmp_path / "b", [_record(i, right=b_right[i], f1=f1[i] + 0.1, doc=docs[i]) for i in range(40)])
    return tmp_path


def test_compare_runs_mcnemar_on_a_constructed_pair(tmp_path):
    _constructed_pair(tmp_path, articles=4)  # under MIN_CLUSTERS: questions count as independent
    diff = compare.compare(tmp_path / "a", tmp_path / "b")
    rows = {r["metric"]: r for r in diff["systems"]["ours"]["metrics"]}
    hit = rows["hit@1"]
    assert (hit["a_only"], hit["b_only"], hit["n"], hit["test"]) == (1, 12, 40, "McNemar exact")
    assert hit["p_value"] == pytest.approx(2 * sum(math.comb(13, i) for i in range(2)) / 2**13)
    assert hit["verdict"] == "better"
    assert rows["f1"]["verdict"] == "better" and rows["f1"]["low"] == pytest.approx(0.1)
    assert rows["total p50 ms"]["verdict"] == "no significant difference"  # identical timings
    assert rows["false_abstention"]["verdict"] == "–"  # no metric values: nothing to say
    assert len(diff["systems"]["ours"]["wrong_to_right"]) == 12
    md = compare.to_markdown(diff)
    assert "| hit@1 | 40 |" in md and "| better |" in md and "McNemar" in md
    # Swapped, the same test says "worse".
    back = {
        r["metric"]: r for r in compare.compare(tmp_path / "b", tmp_path / "a")["systems"]["ours"]["metrics"]
    }
    assert back["hit@1"]["verdict"] == "worse"


def test_compare_over_many_articles_calls_a_rate_only_when_both_tests_do(tmp_path):
    _constructed_pair(tmp_path, articles=10)
    rows = {
        r["metric"]: r for r in compare.compare(tmp_path / "a", tmp_path / "b")["systems"]["ours"]["metrics"]
    }
    hit = rows["hit@1"]
    assert hit["test"] == "McNemar exact and paired bootstrap over articles" and hit["clusters"] == 10
    assert hit["p_value"] is not None and 0 < hit["low"] < hit["diff"] < hit["high"]
    assert hit["verdict"] == "better"


def test_compare_refuses_a_run_against_its_held_out_twin_and_names_differences(tmp_path):
    _constructed_pair(tmp_path, articles=4)
    twin = [json.loads(line) for line in (tmp_path / "a" / "results.jsonl").read_text().splitlines()]
    for r in twin:
        r["unanswerable"] = True
    _write_run(tmp_path / "held", twin)
    with pytest.raises(InputError, match="share no question asked the same way"):
        compare.compare(tmp_path / "a", tmp_path / "held")
    same = compare.compare(tmp_path / "a", tmp_path / "a")
    assert any("same run" in w for w in same["warnings"])
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "metrics.json").write_text("{}")
    with pytest.raises(InputError, match="not a readable run folder"):
        compare.compare(tmp_path / "a", tmp_path / "broken")


def test_a_run_made_before_time_outs_were_recorded_does_not_claim_none(tmp_path):
    old = _record(1, right=True, f1=0.5, doc="d")
    del old["answer"]["timeouts"]
    assert metrics.score_of(old, "timed_out") is None
    assert metrics.score_of(_record(2, right=True, f1=0.5, doc="d"), "timed_out") == 0.0


def test_quality_table_pools_runs_per_language_with_intervals_and_warnings(tmp_path):
    from eval import quality

    def rec(i: int, lang: str, *, unanswerable: bool, abstained: bool, doc: str) -> dict:
        r = _record(i, right=True, f1=0.5, doc=doc)
        r.update(lang=lang, unanswerable=unanswerable, id=f"{lang}{i}")
        r["answer"]["abstained"] = abstained
        r["scores"] = (
            {"abstain_unanswerable": float(abstained)}
            if unanswerable
            else {"false_abstention": float(abstained), "hit@1": 1.0}
        )
        return r

    dev = [
        rec(i, lang, unanswerable=False, abstained=i == 0, doc=f"d{i % 9}")
        for lang in ("en", "ar")
        for i in range(20)
    ]
    held = [
        rec(i, lang, unanswerable=True, abstained=i < 17, doc=f"d{i % 9}")
        for lang in ("en", "ar")
        for i in range(20)
    ]
    seed = [
        rec(i, lang, unanswerable=True, abstained=i < 3, doc="seed")
        for lang in ("en", "ar")
        for i in range(4)
    ]
    for name, records in (("dev", dev), ("held", held), ("seed", seed)):
        _write_run(tmp_path / name, records)
    data = json.loads((tmp_path / "held" / "metrics.json").read_text())
    data["warnings"] = ["1 of 40 answers had a reply cut at the time cap"]
    (tmp_path / "held" / "metrics.json").write_text(json.dumps(data))
    result = quality.table(tmp_path)
    rows = {r["metric"]: r for r in result["rows"]}
    abstained = rows["abstain_unanswerable"]["by_lang"]["en"]  # held + seed pooled: 17 + 3 of 24
    assert (abstained["value"], abstained["n"]) == (20 / 24, 24)
    assert (abstained["low"], abstained["high"]) == pytest.approx(wilson_closed_form(20, 24))
    assert rows["abstain_unanswerable"]["met"]["en"] == "open"  # 0.83 [0.64, 0.93] spans 0.85
    assert rows["false_abstention"]["by_lang"]["ar"]["n"] == 20
    assert quality.judge({"value": 0.02, "low": 0.0, "high": 0.04}, 0.05, higher=False) == "met"
    assert quality.judge({"value": 0.3, "low": 0.2, "high": 0.4}, 0.05, higher=False) == "missed"
    assert result["warnings"] == ["held: 1 of 40 answers had a reply cut at the time cap"]
    md = quality.to_markdown(result)
    assert "| unanswerable questions abstained | 0.83 [0.64, 0.93] n=24 ? |" in md and "**Warning.**" in md


def test_the_metrics_plot_draws_rates_of_zero_and_intervals_that_miss_their_value(tmp_path):
    from eval import report

    # A rate of 0 (its Wilson bound a hair above 0 in floating point) and a BCa interval that does
    # not hold its point estimate: error bars are never negative.
    overall = {
        m: {"value": 0.0, "low": stats.wilson(0, 53)[0], "high": 0.07, "n": 53} for m in metrics.SCORED
    }
    overall["mrr"] = {"value": 0.5, "low": 0.52, "high": 0.6, "n": 9}
    report.metrics_plot(tmp_path / "m.png", {"ours": {"overall": overall}})
    assert (tmp_path / "m.png").read_bytes()[:4] == b"\x89PNG"
    assert all(stats.wilson(0, n)[0] == 0.0 and stats.wilson(n, n)[1] == 1.0 for n in range(1, 300))
