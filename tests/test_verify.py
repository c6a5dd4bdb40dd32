"""Verification of generated answers against the seed article's sentences, with the real embedder."""

from __future__ import annotations

import pytest

from qa import text as qtext
from qa import verify
from qa.config import SEED_DOCUMENT

TEXT = SEED_DOCUMENT.read_text(encoding="utf-8")
SENTENCES = [TEXT[s.start : s.end] for s in qtext.sentences(TEXT)]
KREMLIN = SENTENCES[9]  # the Kremlin: Putin and Kerry did not discuss direct military cooperation
PESKOV = SENTENCES[10]  # Peskov's quote, and the Washington Post report
ORTON = SENTENCES[8]  # Kyle Orton, Middle East expert at the Henry Jackson Society
ZAKHAROVA = SENTENCES[13]  # Zakharova: Russia cares about Syria as a state of institutions
JORDAN = SENTENCES[2]  # the joint operations room in Jordan


def test_markers_renumber_and_strip():
    assert verify.markers("Yes [2][1, 3].") == [(4, 7, (2,)), (7, 13, (1, 3))]
    assert verify.renumber("A [3]. B [1, 3].", {3: 1, 1: 2}) == "A [1]. B [2][1]."
    assert verify.strip_markers("Peskov denied it [1] .") == "Peskov denied it."


def test_answer_sentences_attach_markers_to_the_right_sentence():
    parts = verify.answer_sentences("The Kremlin denied it.[1][3] Peskov said so. [2] Also this.")
    assert parts == [("The Kremlin denied it.", (1, 3)), ("Peskov said so.", (2,)), ("Also this.", (2,))]


def test_numbers_normalise_arabic_indic_digits():
    assert verify.numbers("في ٢٠١٦ و 1,500 [2]") == {"2016", "1500", "2"}
    assert verify.numbers(verify.strip_markers("في ٢٠١٦ [2]")) == {"2016"}
    assert verify.numbers("١٫٥ مليون و ۲۰۱۶") == {"1.5", "2016"}  # Arabic decimal point, Persian digits


def test_evidence_spans_and_clauses():
    assert verify.evidence_spans("في منطقة الشرق الأوسط", range(2, 3)) == ["منطقة الشرق", "الشرق الأوسط"]
    assert verify.evidence_clauses("قال بسكوف إنّه “لم يتمّ بحث الموضوع”، في حين") == [
        "قال بسكوف إنّه",
        "لم يتمّ بحث الموضوع",
    ]
    assert verify.evidence_clauses("جملة واحدة بلا فواصل.") == []


def test_skeletons_match_names_across_scripts():
    assert verify.skeleton("Peskov") == verify.skeleton("بسكوف") == "BSKF"
    assert verify.skeleton_match("Nusra", ["النصرة"]) == 1.0
    assert verify.skeleton_match("Boris", ["بوتين", "البريطانية"]) < verify.SKELETON_THRESHOLD


def test_names_skip_sentence_start_words():
    assert verify.names("According to Dmitry Peskov, the Kremlin denied it.") == ["Dmitry Peskov", "Kremlin"]
    assert verify.names("The Henry Jackson Society told Russia-Now.com.") == [
        "Henry Jackson Society",
        "Russia-Now.com",
    ]


def test_faithful_english_answer_passes(embedder):
    answer = (
        "The Kremlin denied that Putin and Kerry discussed direct military cooperation against terrorists "
        "in Syria [1]. Kremlin spokesman Dmitry Peskov said direct military cooperation in the war on "
        "terrorism was not discussed [2]."
    )
    verdict = verify.verify(
        answer, [KREMLIN, PESKOV], question="What did the Kremlin deny?", embedder=embedder
    )
    assert verdict.ok, verdict.reason
    assert verdict.cited == (1, 2)
    assert all(c.similarity >= verify.SUPPORT_THRESHOLD for c in verdict.checks)


def test_faithful_arabic_answer_passes(embedder):
    answer = "نفى الكرملين أن يكون بوتين وكيري قد بحثا التعاون العسكري المباشر ضد الإرهابيين في سوريا [1]."
    verdict = verify.verify(answer, [KREMLIN], question="ماذا نفى الكرملين؟", embedder=embedder)
    assert verdict.ok, verdict.reason


def test_invented_number_fails(embedder):
    answer = "The Kremlin denied on 12 May that Putin and Kerry discussed direct military cooperation in Syria [1]."
    verdict = verify.verify(answer, [KREMLIN], question="What did the Kremlin deny?", embedder=embedder)
    assert not verdict.ok
    assert verdict.checks[0].missing_numbers == ("12",)
    assert "12" in verdict.reason


def test_invented_name_fails(embedder):
    answer = (
        "Boris Johnson said that Putin and Kerry did not discuss direct military cooperation in Syria [1]."
    )
    verdict = verify.verify(answer, [KREMLIN], question="What did the Kremlin deny?", embedder=embedder)
    assert not verdict.ok
    assert verdict.checks[0].missing_names == ("Boris Johnson",)


def test_name_spelled_in_arabic_in_the_evidence_passes(embedder):
    # Neither name is in the question; the evidence writes them «دميتري بسكوف» and «الأردن».
    assert verify.name_support("Dmitry Peskov", [PESKOV], embedder=embedder) == "transliterated"
    assert verify.name_support("Jordan", [JORDAN], embedder=embedder) == "rendering of «الأردن»"
    assert not verify.name_supported("Boris Johnson", [PESKOV], embedder=embedder)


def test_translated_name_passes(embedder):
    # "Middle East" is a translation of «الشرق الأوسط», not a transliteration: rejected before.
    assert verify.name_support("Middle East", [ORTON], embedder=embedder) == "rendering of «الشرق الأوسط»"
    assert verify.name_support("Henry Jackson Society", [ORTON], embedder=embedder).startswith("rendering")
    assert verify.name_support("Middle East", [KREMLIN], embedder=embedder) is None


def test_name_from_the_question_passes(embedder):
    answer = "Kyle Orton is an expert at the Henry Jackson Society [1]."
    verdict = verify.verify(answer, [ORTON], question="Who is Kyle Orton?", embedder=embedder)
    assert verdict.checks[0].missing_names == ()  # Kyle Orton from the question, the Society rendered


@pytest.mark.xfail(
    strict=True,
    reason="known limit: this short answer scores 0.37 against the long sentence and its clauses, "
    "below SUPPORT_THRESHOLD (eval/calibration/verify.json)",
)
def test_short_answer_about_a_long_sentence_passes(embedder):
    answer = "Kyle Orton is an expert at the Henry Jackson Society [1]."
    assert verify.verify(answer, [ORTON], question="Who is Kyle Orton?", embedder=embedder).ok


@pytest.mark.parametrize(
    ("answer", "question"),
    [
        ("المتحدث باسم الكرملين هو دميتري بسكوف [1].", "من هو المتحدث باسم الكرملين؟"),
        ("The Kremlin spokesman is Dmitry Peskov [1].", "Who is the Kremlin spokesman?"),
    ],
)
def test_short_answer_restating_one_clause_passes(embedder, answer, question):
    # One clause of the long evidence sentence names the spokesman: the answer is checked against it
    # too (both were rejected against the whole sentence alone).
    verdict = verify.verify(answer, [PESKOV], question=question, embedder=embedder)
    assert verdict.ok, verdict.reason


def test_answer_citing_the_wrong_sentence_fails(embedder):
    answer = "Russia wants Syria to remain a state of institutions able to face the terrorist threat [1]."
    assert verify.verify(answer, [ZAKHAROVA], question="What does Russia want?", embedder=embedder).ok
    verdict = verify.verify(answer, [KREMLIN], question="What does Russia want?", embedder=embedder)
    assert not verdict.ok
    assert verdict.checks[0].similarity < verify.SUPPORT_THRESHOLD


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        ("The Kremlin denied military cooperation.", "cites none"),
        ("The Kremlin denied military cooperation [3].", "only 1 sentences"),
    ],
)
def test_missing_or_unknown_citation_fails(embedder, answer, reason):
    verdict = verify.verify(answer, [KREMLIN], question="What did the Kremlin deny?", embedder=embedder)
    assert not verdict.ok
    assert reason in verdict.reason


# The rendering check ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rendering", "source"),
    [
        ("Jordan", "الأردن"),
        ("In Jordan", "في الأردن"),
        ("the Middle East expert", "الخبير في منطقة الشرق الأوسط"),
        ("In 2016", "في عام ٢٠١٦"),  # Arabic-Indic digits are the same number
    ],
)
def test_rendering_is_accepted(embedder, rendering, source):
    check = verify.check_rendering(rendering, source, embedder=embedder)
    assert check.ok, check.reason
    assert check.similarity >= verify.RENDERING_THRESHOLD and check.missing_numbers == ()
    assert check.reason is None


def test_rendering_with_a_wrong_number_is_rejected(embedder):
    check = verify.check_rendering("In 2015", "في عام 2016", embedder=embedder)
    assert not check.ok
    assert check.missing_numbers == ("2015", "2016")
    assert check.reason == "the number 2015 is not in the source"
    assert check.similarity >= verify.RENDERING_THRESHOLD  # close in meaning: only the number catches it


def test_rendering_that_spells_a_number_in_words_is_rejected(embedder):
    check = verify.check_rendering("for three days", "لمدة 3 أيام", embedder=embedder)
    assert not check.ok and check.missing_numbers == ("3",)
    assert check.reason == "the source's number 3 is missing from the rendering"


@pytest.mark.parametrize(
    ("rendering", "source"),
    [("The weather is nice today", "في الأردن"), ("a banana", "الخبير في منطقة الشرق الأوسط")],
)
def test_unrelated_rendering_is_rejected(embedder, rendering, source):
    check = verify.check_rendering(rendering, source, embedder=embedder)
    assert not check.ok
    assert check.similarity < verify.RENDERING_THRESHOLD
    assert check.reason.startswith("the rendering is not close enough to its source")


def test_rendering_check_uses_the_threshold_given(embedder):
    assert not verify.check_rendering("In Jordan", "في الأردن", embedder=embedder, threshold=0.99).ok
    assert not verify.check_rendering("", "في الأردن", embedder=embedder).ok
