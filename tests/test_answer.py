"""Cited answers on the seed article, in English and Arabic, and abstention."""

from __future__ import annotations

import pytest

from qa.errors import InputError
from tests.conftest import SEED

SEED_TEXT = SEED.read_text(encoding="utf-8").strip()

# question -> a phrase that only the answering sentence contains
ANSWERABLE = {
    "What did the Kremlin deny?": "لم يبحثا فكرة التّعاون العسكري المباشر",
    "ماذا نفى الكرملين؟": "لم يبحثا فكرة التّعاون العسكري المباشر",
    "Where would the joint operations room be?": "غرفة تنفيذ مشتركة للعمليات الروسية الأميركية في الأردن",
    "أين ستكون غرفة العمليات المشتركة؟": "غرفة تنفيذ مشتركة للعمليات الروسية الأميركية في الأردن",
    "Who is Kyle Orton?": "الخبير في منطقة الشرق الأوسط في مؤسسة هنري جاكسون",
    "من هو كايل أورتون؟": "الخبير في منطقة الشرق الأوسط في مؤسسة هنري جاكسون",
}
UNANSWERABLE = [
    "What is the capital of Japan?",
    "ما هي عاصمة اليابان؟",
    "How many civilians were killed in Aleppo this week?",
]


@pytest.mark.parametrize("question", list(ANSWERABLE))
def test_seed_questions_cite_the_answering_sentence(seeded, question):
    answer = seeded.ask(question)
    assert not answer.abstained, answer.answer
    assert answer.citations[0].n == 1 and "[1]" in answer.answer
    assert any(ANSWERABLE[question] in c.quote for c in answer.citations), [c.quote for c in answer.citations]
    lang = "ar" if question[0] > "\u0600" else "en"
    assert answer.question_lang == answer.answer_lang == lang
    if lang == "en":
        assert answer.answer.startswith("According to the article [1]")
    else:
        assert answer.answer.startswith("بحسب المقال [1]")


@pytest.mark.parametrize("question", [*ANSWERABLE, *UNANSWERABLE])
def test_every_citation_is_an_exact_span_of_the_document(seeded, question):
    answer = seeded.ask(question)
    for c in [*answer.citations, *answer.closest]:
        assert c.doc == SEED.name
        assert SEED_TEXT[c.start : c.end] == c.quote
        assert SEED_TEXT[c.passage_start : c.passage_start + len(c.passage)] == c.passage
        assert f"«{c.quote}»" in answer.answer or answer.abstained


@pytest.mark.parametrize("question", UNANSWERABLE)
def test_questions_the_article_cannot_answer_abstain(seeded, question):
    answer = seeded.ask(question)
    assert answer.abstained
    assert answer.citations == ()
    assert answer.closest, "the closest evidence is still offered, apart from the answer"
    assert "[1]" not in answer.answer


def test_answer_language_can_be_forced(seeded):
    answer = seeded.ask("What did the Kremlin deny?", answer_language="ar")
    assert answer.answer.startswith("بحسب المقال [1]") and answer.question_lang == "en"


def test_empty_index_says_so(assistant):
    answer = assistant.ask("What did the Kremlin deny?")
    assert answer.abstained and "Nothing is indexed" in answer.answer


@pytest.mark.parametrize(
    ("question", "message"), [("", "empty"), ("   \n ", "empty"), ("x" * 2001, "limit is 2000")]
)
def test_bad_questions_are_refused(seeded, question, message):
    with pytest.raises(InputError, match=message):
        seeded.ask(question)


def test_json_shape(seeded):
    data = seeded.ask("Who is Kyle Orton?").to_dict()
    assert {"question", "question_lang", "answer", "mode", "abstained", "citations", "timings_ms"} <= set(
        data
    )
    assert data["mode"] == "extractive"
    assert {"n", "doc", "chunk_id", "start", "end", "quote"} <= set(data["citations"][0])
    assert data["timings_ms"]["total"] >= data["timings_ms"]["retrieve"] > 0


def test_follow_up_is_resolved_against_the_previous_question(seeded):
    history = [("Who is Kyle Orton?", seeded.ask("Who is Kyle Orton?").answer)]
    follow_up = "Which newspaper did he speak to?"
    alone = seeded.ask(follow_up)
    answer = seeded.ask(follow_up, history=history)
    assert answer.question == follow_up
    assert not answer.abstained
    assert any("التلغراف البريطانية" in c.quote for c in answer.citations)
    # without the conversation the same words find nothing strong enough
    assert alone.abstained or not any("التلغراف" in c.quote for c in alone.citations)


def test_a_question_that_names_its_subject_is_not_joined_to_the_previous_one(seeded):
    # Asked after a question about Zakharova, "Where would the joint operations room be?" was joined
    # to it and answered from her sentence about Aleppo; alone it cites the sentence about Jordan.
    question = "Where would the joint operations room be?"
    history = [("What did Zakharova say about Aleppo?", "")]
    alone = seeded.ask(question)
    after = seeded.ask(question, history=history)
    assert [c.quote for c in after.citations] == [c.quote for c in alone.citations]
    assert any("الأردن" in c.quote for c in after.citations)


@pytest.mark.parametrize(
    ("question", "follows"),
    [
        ("Where would the joint operations room be?", False),
        ("What did the Kremlin deny?", False),
        ("Which newspaper did he speak to?", True),
        ("In what atmosphere did she say Lavrov and Kerry are working?", True),
        ("And Lavrov?", True),
        ("Why?", True),
        ("منذ متى يشغل منصب المتحدث باسم الكرملين؟", True),  # Arabic drops its subject pronouns
    ],
)
def test_may_follow_up(question, follows):
    from qa.assistant import may_follow_up

    assert may_follow_up(question) is follows
