"""Metric functions on hand-made cases: Arabic normalisation, languages, spans, thresholds."""

from __future__ import annotations

import pytest

from eval import metrics


def test_f1_and_em_ignore_diacritics_hamza_and_ta_marbuta():
    assert metrics.token_f1("الإرهابيّين", "الارهابيين") == 1.0
    assert metrics.exact_match("مُؤسَّسة هنري جاكسون", "مؤسسه هنري جاكسون")
    assert metrics.exact_match("٣ أيام", "3 ايام")
    assert not metrics.exact_match("جون كيري", "كيري")


def test_f1_partial_overlap():
    assert metrics.token_f1("الرئيس بوتين", "بوتين") == pytest.approx(2 / 3)
    assert metrics.token_f1("John Kerry", "Kerry") == pytest.approx(2 / 3)
    assert metrics.token_f1("Moscow", "Jordan") == 0.0


def test_answer_content_drops_markers_and_framing_in_both_languages():
    en = "According to the article [1]: «كيري في موسكو» It also says [2]: «داعش»"
    ar = "بحسب المقال [1]: «كيري في موسكو» ويذكر أيضاً [2]: «داعش»"
    assert metrics.answer_content(en) == "كيري في موسكو داعش"
    assert metrics.answer_content(ar) == "كيري في موسكو داعش"


def test_answer_in_another_language_is_not_scored_as_zero():
    got = metrics.score_answer("John Kerry met Lavrov.", ["جون كيري"], abstained=False)
    assert got["cross_language"] is True
    assert got["f1"] is None and got["em"] is None


def test_answer_scored_against_the_gold_in_its_own_language():
    golds = ["John Kerry", "جون كيري"]
    en = metrics.score_answer("John Kerry", golds, abstained=False)
    ar = metrics.score_answer("بحسب المقال [1]: «نظيره الأميركي جون كيري»", golds, abstained=False)
    assert en == {"f1": 1.0, "em": 1.0, "gold_in_answer": 1.0, "answer_lang": "en", "cross_language": False}
    assert ar["answer_lang"] == "ar" and ar["gold_in_answer"] == 1.0 and 0 < ar["f1"] < 1


def test_abstaining_on_an_answerable_question_scores_zero():
    got = metrics.score_answer("The article does not answer this question.", ["Friday"], abstained=True)
    assert got["f1"] == 0.0 and got["em"] == 0.0 and not got["cross_language"]


def test_latin_names_and_numbers_fit_arabic_answers():
    assert metrics.same_language("Russia-Now.com", "ar", "قالت لموقع Russia-Now.com")
    assert metrics.same_language("1973", "ar", "في عام 1973")
    assert not metrics.same_language("Friday", "ar", "يوم الجمعة")


def test_retrieval_scores_rank_hits_and_mrr():
    gold = [("a.txt", 100, 120)]
    passages = [("a.txt", 0, 50), ("b.txt", 100, 120), ("a.txt", 110, 200)]
    got = metrics.retrieval_scores(passages, gold)
    assert got == {"rank": 3, "hit@1": 0.0, "hit@3": 1.0, "hit@5": 1.0, "mrr": pytest.approx(1 / 3)}
    assert metrics.retrieval_scores(passages[:2], gold)["mrr"] == 0.0
    assert metrics.retrieval_scores(passages, [])["hit@1"] is None


def test_spans_touching_at_an_edge_do_not_overlap():
    assert not metrics.overlaps(("a", 0, 10), ("a", 10, 20))
    assert metrics.overlaps(("a", 0, 11), ("a", 10, 20))


def test_citation_precision_and_recall():
    gold = [("a", 10, 20), ("a", 50, 60)]
    cited = [("a", 0, 15), ("a", 30, 40)]
    assert metrics.citation_scores(cited, gold) == {"citation_precision": 0.5, "citation_recall": 0.5}
    assert metrics.citation_scores([], gold) == {"citation_precision": None, "citation_recall": 0.0}


def test_quote_mismatch_is_counted():
    texts = {"a.txt": "نفى الكرملين الخبر."}
    good = {"doc": "a.txt", "start": 4, "end": 12, "quote": "الكرملين"}
    shifted = {**good, "start": 5, "end": 13}
    unknown = {**good, "doc": "b.txt"}
    assert metrics.quote_mismatches([good], texts) == 0
    assert metrics.quote_mismatches([good, shifted, unknown], texts) == 2


def test_resolve_span_prefers_the_occurrence_nearest_the_given_offset():
    text = "كيري ثم كيري"
    assert metrics.resolve_span(text, "d", "كيري", near=7) == ("d", 8, 12)
    assert metrics.resolve_span(text, "d", "كيري") == ("d", 0, 4)
    assert metrics.resolve_span(text, "d", "لافروف") is None


def test_aggregates_count_what_they_average():
    records = [
        {"scores": {"f1": 1.0, "hit@1": None, "cross_language": False}},
        {"scores": {"f1": None, "cross_language": True}},
        {"scores": {"f1": 0.5, "quote_mismatches": 1, "citations_checked": 2}},
    ]
    got = metrics.aggregate(records)
    assert (got["f1"]["value"], got["f1"]["n"]) == (0.75, 2)
    assert got["f1"]["low"] <= 0.75 <= got["f1"]["high"]  # the bootstrap interval (tests/test_eval_stats.py)
    assert got["hit@1"] == {"value": None, "low": None, "high": None, "n": 0, "clusters": None}
    assert got["cross_language_not_scored"] == 1
    assert (got["quote_mismatches"], got["citations_checked"]) == (1, 2)
    assert metrics.percentile([1, 2, 3, 4], 50) == 2.5
    assert metrics.percentile([], 95) is None


def test_best_threshold_separates_and_reports_balanced_accuracy():
    got = metrics.best_threshold(answerable=[0.6, 0.7, 0.8], unanswerable=[0.3, 0.4, 0.65])
    assert got["balanced_accuracy"] == pytest.approx((2 / 3 + 1) / 2)
    assert 0.4 < got["threshold"] <= 0.6
    assert metrics.balanced_accuracy(0.5, [0.6], [0.3]) == 1.0
    with pytest.raises(ValueError):
        metrics.best_threshold([0.5], [])


def _short(text: str, quote: str, *, lang: str, verified: bool = True) -> dict:
    source = {"n": 1, "doc": "d.txt", "start": 0, "end": len(quote), "quote": quote}
    return {"text": text, "lang": lang, "verified": verified, "source": source}


def test_short_answer_span_and_rendering_are_scored_against_their_own_golds():
    golds = ["في الأردن", "in Jordan"]
    s = metrics.score_short_answer(
        _short("In Jordan", "في الأردن", lang="en"), golds, lang="en", abstained=False
    )
    assert (s["span_f1"], s["short_f1"], s["wrong_but_shown"], s["short_verified"]) == (1.0, 1.0, 0.0, 1.0)
    wrong = metrics.score_short_answer(
        _short("In Moscow", "في موسكو", lang="en"), golds, lang="en", abstained=False
    )
    assert (wrong["span_f1"], wrong["short_f1"], wrong["wrong_but_shown"]) == (0.0, 0.0, 1.0)


def test_a_gold_without_letters_scores_the_arabic_span_too():
    # "15%" is both the Arabic gold span and its English answer: a right span is not "wrong but shown".
    s = metrics.score_short_answer(_short("15%", "15%", lang="ar"), ["15%"], lang="ar", abstained=False)
    assert (s["span_f1"], s["wrong_but_shown"]) == (1.0, 0.0)


def test_a_checked_answer_is_wrong_below_half_f1_against_both_golds():
    golds = ["صحيفة ديلي تلغراف البريطانية", "the British Daily Telegraph newspaper"]
    # Half the words: not wrong; F1 = 0 is "wrong but shown", F1 0.4 (one word of four) only "checked wrong".
    half = _short("the Daily Telegraph", "ديلي تلغراف", lang="en")
    vague = _short("British", "البريطانية", lang="en")
    off = _short("In Moscow", "في موسكو", lang="en")
    for short, wrong, zero in ((half, 0.0, 0.0), (vague, 1.0, 0.0), (off, 1.0, 1.0)):
        s = metrics.score_short_answer(short, golds, lang="en", abstained=False)
        assert (s["checked_wrong"], s["wrong_but_shown"]) == (wrong, zero), short["text"]
        assert s["short_right"] == 1.0 - wrong
    unchecked = metrics.score_short_answer(
        _short("x", "في موسكو", lang="ar", verified=False), golds, lang="en", abstained=False
    )
    assert unchecked["checked_wrong"] is None and unchecked["short_right"] == 0.0


def test_a_checked_short_answer_whose_wording_was_refused_is_scored_on_its_words():
    """Checked can go to a short answer whose English wording was refused (its Arabic words are
    shown): certified_wrong scores those words, right or wrong, and such an answer never counts as
    verified."""
    golds = ["في الأردن", "in Jordan"]
    right = _short("في الأردن", "في الأردن", lang="ar", verified=False) | {"checked": True}
    wrong = _short("في موسكو", "في موسكو", lang="ar", verified=False) | {"checked": True}
    s = metrics.score_short_answer(right, golds, lang="en", abstained=False)
    assert (s["certified_wrong"], s["short_checked"], s["short_verified"]) == (0.0, 1.0, 0.0)
    assert metrics.score_short_answer(wrong, golds, lang="en", abstained=False)["certified_wrong"] == 1.0
