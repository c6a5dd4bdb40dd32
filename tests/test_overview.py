"""Questions about the whole document: the overview made of its most central sentences."""

from __future__ import annotations

from dataclasses import replace

import pytest

from qa import overview
from tests.conftest import SEED

TEXT = SEED.read_text(encoding="utf-8")


@pytest.mark.parametrize(
    "question",
    [
        "What is this article about?",
        "Summarize the article",
        "Give me a summary",
        "What are the main points?",
        "لخّص المقال",
        "عمّ يتحدث المقال؟",
        "ما موضوع النص؟",
        "ما هي النقاط الرئيسية؟",
    ],
)
def test_questions_about_the_whole_document_are_recognised(question):
    assert overview.is_about_document(question)


@pytest.mark.parametrize(
    "question",
    [
        "Who is Kyle Orton?",
        "What did the Kremlin deny?",
        "ماذا نفى الكرملين؟",
        "Where is the article's author?",
    ],
)
def test_questions_about_a_fact_are_not(question):
    assert not overview.is_about_document(question)


def test_overview_cites_central_sentences_in_document_order(seeded):
    seeded.settings = seeded.settings.model_copy(update={"short_answer": "off"})
    result = seeded.ask("What is this article about?")
    assert result.mode == "overview" and not result.abstained
    assert len(result.citations) == overview.OVERVIEW_SENTENCES
    starts = [c.start for c in result.citations]
    assert starts == sorted(starts)
    for c in result.citations:
        assert TEXT[c.start : c.end] == c.quote and f"[{c.n}]" in result.answer
    # Central means close to the document's centroid: the Kremlin's denial, its main thread, is in.
    assert any("الكرملين" in c.quote for c in result.citations)
    # The same sentences for an Arabic reader (who gets no word-by-word gloss: English readers do).
    assert seeded.ask("لخّص المقال").citations == tuple(replace(c, gloss=()) for c in result.citations)
    assert all(c.gloss for c in result.citations)


def test_overview_of_an_empty_index_says_so(fast_assistant):
    result = fast_assistant.ask("Summarize the article")
    assert result.abstained and result.citations == ()


def test_with_two_documents_the_overview_says_which_one_it_is(seeded, tmp_path):
    # A new user uploaded a note and asked "What is this article about?": the overview of the note
    # came back with no word that there were two documents, or which one it was.
    assert seeded.ask("What is this article about?").note is None  # one document: nothing to say
    note = tmp_path / "note"
    note.mkdir()
    (note / "meeting.txt").write_text(
        "The committee met on Tuesday to plan the harbour festival. It chose the music and the boats.\n",
        encoding="utf-8",
    )
    seeded.ingest([note], progress=False)
    result = seeded.ask("What is this article about?")
    doc = result.citations[0].doc
    assert result.note.startswith("2 documents are indexed") and f"«{doc}»" in result.note
