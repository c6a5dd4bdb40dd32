"""Learn-then-Test thresholds (eval.certify) against scipy and against planted score distributions.

Pure functions, no model: the fast lane.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import binom

from eval import certify


def test_the_least_number_that_can_pass_is_45_at_5_percent_and_delta_01():
    assert certify.min_accepted(0.05, 0.1) == 45
    assert binom.cdf(0, 45, 0.05) <= 0.1 < binom.cdf(0, 44, 0.05)


def test_planted_scores_certify_exactly_where_scipy_says_the_test_first_fails():
    """200 right answers score highest, then only wrong ones: accepting 200 + j answers holds j wrong.
    The sequence stops at the first j where binom.cdf(j, 200 + j, 0.05) > 0.1 (found here by a plain
    loop over scipy), so the certified bar accepts exactly the j before it."""
    scores = list(certify.GRID[:400])  # one answer at each of the 400 strictest bars
    wrong = [i >= 200 for i in range(400)]
    j = 0
    while binom.cdf(j + 1, 200 + j + 1, 0.05) <= 0.1:
        j += 1
    cert = certify.certify(scores, wrong)
    assert (cert.accepted, cert.wrong) == (200 + j, j)
    assert cert.threshold == scores[200 + j - 1]
    assert cert.p_value == pytest.approx(binom.cdf(j, 200 + j, 0.05))
    # A passed test is the Clopper-Pearson bound at 1 - delta under alpha (the two are dual).
    assert cert.wrong / cert.accepted < cert.upper <= 0.05


def test_an_early_wrong_answer_stops_the_sequence_even_if_later_bars_would_pass():
    """Fixed-sequence testing: once a bar fails, looser ones are not tested (no cherry-picking)."""
    wrong = [False] * 44 + [True, True, True] + [False] * 400  # 3 wrong among the first 47: p > 0.1
    wrong = wrong[:1001]
    assert binom.cdf(3, 47, 0.05) > 0.1
    cert = certify.certify(list(certify.GRID[: len(wrong)]), wrong)
    assert cert.threshold is None and cert.tested == 1
    assert "too many wrong" in cert.reason


def test_too_few_answers_certify_nothing_and_say_why():
    cert = certify.certify([0.9] * 44, [False] * 44)
    assert cert.threshold is None and cert.coverage == 0.0
    assert "45 are needed" in cert.reason


def test_refused_answers_never_count_and_ties_are_accepted_together():
    scores = [-math.inf] * 100 + [0.5] * 60
    cert = certify.certify(scores, [True] * 100 + [False] * 60)
    assert (cert.threshold, cert.accepted, cert.wrong, cert.n) == (0.5, 60, 0, 160)
    with pytest.raises(ValueError):
        certify.certify([0.1], [])


def test_the_guarantee_holds_on_planted_distributions():
    """Scores uniform on [0, 1], P(wrong | s) = 0.4 (1 - s)^3: the wrong rate above a bar t is
    0.1 (1 - t)^3, at most 5% exactly when t >= 1 - 0.5^(1/3) (0.206, accepting 79%). Over 1,000
    certification parts of 600 answers, a bar below that (a broken promise) must be certified in at
    most delta = 10% of them (allowing three standard errors of the simulation), and the procedure
    must not be vacuous: most parts certify a bar, accepting most of what could be."""
    rng = np.random.default_rng(20261206)
    boundary = 1 - 0.5 ** (1 / 3)
    broken, coverages = 0, []
    for _ in range(1000):
        s = rng.uniform(size=600)
        wrong = rng.uniform(size=600) < 0.4 * (1 - s) ** 3
        cert = certify.certify(s.tolist(), wrong.tolist())
        broken += cert.threshold is not None and cert.threshold < boundary
        coverages.append(cert.coverage)
    assert broken / 1000 <= 0.1 + 3 * math.sqrt(0.1 * 0.9 / 1000)
    assert np.mean(np.array(coverages) > 0) > 0.9 and np.median(coverages) > 0.5


def test_risk_coverage_curve_counts_what_each_bar_accepts():
    from eval import calibrators

    curve = calibrators.risk_coverage([0.9, 0.8, 0.8, -math.inf], [False, True, False, True])
    assert curve == [(0.25, 0.0, 1), (0.75, 1 / 3, 3)]


def _rows(rng, n: int, lang: str, part: str) -> list[dict]:
    """Planted signal lines: the answer is wrong with probability 0.4 (1 - answer_probability)^3."""
    from qa import confidence

    rows = []
    for i in range(n):
        p = float(rng.uniform())
        feats = dict.fromkeys(confidence.FEATURES, 0.0) | {
            "answer_probability": p,
            "english": float(lang == "en"),
        }
        rows.append({"id": f"{part}-{lang}-{i}", "lang": lang, "part": part, "key": "k", "shown": True,
                     "has_short": True, "abstained": False,
                     "wrong": bool(rng.uniform() < 0.4 * (1 - p) ** 3), "features": feats})  # fmt: skip
    return rows


def test_the_calibrator_is_fit_on_one_part_and_certified_on_the_other(tmp_path):
    """The score learns that a surer reading is right more often; Arabic, with 600 certification
    answers, gets a bar (none of its accepted rows is from the fit part); English, with 30, gets none
    and the reason; the entry round-trips through the file qa.confidence reads."""
    from eval import calibrators
    from qa import confidence

    rng = np.random.default_rng(7)
    rows = _rows(rng, 400, "ar", "fit") + _rows(rng, 600, "ar", "certify") + _rows(rng, 30, "en", "certify")
    entry = calibrators.build(rows, "k")
    weight = dict(zip(entry["features"], entry["coef"], strict=True))
    assert weight["answer_probability"] > 0
    bars = {b["lang"]: b for b in entry["bars"]}
    assert bars["ar"]["threshold"] is not None and bars["ar"]["n"] == 600
    assert bars["ar"]["wrong"] / bars["ar"]["accepted"] <= 0.1
    assert bars["en"]["threshold"] is None and "45 are needed" in bars["en"]["reason"]
    path = tmp_path / "calibrations.json"
    calibrators.write("k", entry, path)
    loaded = confidence._load(path.read_bytes())["k"]
    sure = dict.fromkeys(confidence.FEATURES, 0.0) | {"answer_probability": 0.99}
    assert loaded.score(sure) >= loaded.bar("short_answer", "ar").threshold
    assert loaded.bar("short_answer", "en").threshold is None
    calibrators.plot(rows, "k", entry, tmp_path / "checked.png")
    assert (tmp_path / "checked.png").read_bytes()[:4] == b"\x89PNG"


def test_too_few_labelled_answers_fit_nothing_and_certify_nothing():
    from eval import calibrators

    rng = np.random.default_rng(3)
    entry = calibrators.build(_rows(rng, 10, "ar", "fit") + _rows(rng, 100, "ar", "certify"), "k")
    assert all(b["threshold"] is None and "too few" in b["reason"] for b in entry["bars"])
    assert entry["fitted"] is False  # zero weights score nothing: qa.confidence gives no confidence


def test_an_unverified_short_answer_is_a_candidate_an_abstention_is_not():
    """The checked label can go to any short answer the reader gave (its rules are a feature): a
    refused English wording leaves the Arabic words, which can be right. An abstained answer, or a
    question with no short answer, is never accepted whatever its features say."""
    from eval import calibrators
    from qa import confidence

    feats = dict.fromkeys(confidence.FEATURES, 0.0)
    base = {"features": feats, "shown": False}
    n = len(confidence.FEATURES)
    cal = confidence.Calibration("k", confidence.FEATURES, (0.0,) * n, (1.0,) * n, (0.0,) * n, 0.0, {})
    refused = base | {"has_short": True, "abstained": False}
    abstained = base | {"has_short": True, "abstained": True}
    none = base | {"has_short": False, "abstained": False, "features": None}
    assert calibrators.scores(cal, [refused, abstained, none]) == [0.5, -math.inf, -math.inf]


def _record(question: str, span: str, golds: list[str], *, verified=True, abstained=False) -> dict:
    """A journal line of our pipeline, as eval.runner writes it (the fields eval.signals reads)."""
    sentence = f"قال المتحدث {span} أمس."
    short = {"text": span, "lang": "ar", "verified": verified, "source": {"n": 1, "quote": span}}
    return {
        "id": "q1", "lang": "ar", "doc": "article-1", "source": "mlqa", "question": question,
        "gold_answers": golds, "answer": {"abstained": abstained, "short_answer": short,
                                          "citations": [{"n": 1, "quote": sentence}], "signals": {}},
    }  # fmt: skip


def test_a_signal_line_is_labelled_and_replays_the_answer_type_rule():
    """eval.signals.row: a span holding the gold is right, another wrong; its features are finite; a
    span today's answer-type rule refuses (a place for «متى») is no short answer, so no candidate."""
    from eval import calibrators, signals

    right = signals.row(_record("من قال ذلك؟", "جون كيري", ["كيري"]), key="k", code="c")
    wrong = signals.row(_record("من قال ذلك؟", "سيرغي لافروف", ["كيري"]), key="k", code="c")
    assert (right["wrong"], wrong["wrong"]) == (False, True)
    assert calibrators.candidate(right) and all(math.isfinite(v) for v in right["features"].values())
    place = signals.row(_record("متى ولد؟", "في رندة بإسبانيا", ["عام 810"]), key="k", code="c")
    assert not place["has_short"] and place["wrong"] is None and not calibrators.candidate(place)
    held = signals.row(_record("من قال ذلك؟", "جون كيري", ["كيري"], abstained=True), key="k", code="c")
    assert held["has_short"] and not calibrators.candidate(held)
    cut = _record("من قال ذلك؟", "جون كيري", ["كيري"])
    cut["answer"]["timeouts"] = ["reader"]
    assert signals.row(cut, key="k", code="c") is None  # missing for want of time, not of an answer


def test_a_span_that_repeats_the_question_scores_the_two_extractive_cues_apart():
    """qa.confidence's two extractive-QA cues, by hand: the question's words are اسس, متحف, اسكندر
    (qa.text.tokens); copying the museum back repeats one of them and leaves one of three around it,
    copying the founder's name repeats none and leaves two of three (متحف, اسكندر) around it."""
    question = "من أسس المتحف في الإسكندرية؟"
    sentence = "افتتح أحمد سالم المتحف في الإسكندرية عام 2002"
    from qa import confidence as qconfidence

    subject = qconfidence.features(question, "ar", {}, "المتحف", sentence)
    answer = qconfidence.features(question, "ar", {}, "أحمد سالم", sentence)
    assert (subject["span_in_question"], subject["question_elsewhere"]) == (1.0, pytest.approx(1 / 3))
    assert (answer["span_in_question"], answer["question_elsewhere"]) == (0.0, pytest.approx(2 / 3))
    assert set(qconfidence.FEATURES) <= set(answer)
