"""Ranking: language-aware fusion, evidence sentences inside the retrieved chunks."""

from __future__ import annotations

from qa import plugins
from qa.answer import extractive_mode as answer_mode_extractive


def test_lexical_scores_are_fused_only_for_arabic_questions(seeded):
    english = seeded.retriever.retrieve("What did the Kremlin deny?")
    arabic = seeded.retriever.retrieve("ماذا نفى الكرملين؟")
    assert english.language == "en" and arabic.language == "ar"
    assert all(h.lexical == 0 for h in english.hits)
    assert any(h.lexical > 0 for h in arabic.hits)
    for retrieval in (english, arabic):
        scores = [h.score for h in retrieval.hits]
        assert scores == sorted(scores, reverse=True)
        assert len(retrieval.hits) == seeded.settings.k


def test_evidence_sentences_lie_inside_the_retrieved_chunks(seeded):
    retrieval = seeded.retriever.retrieve("Who is Kyle Orton?", k=2)
    chunks = {h.chunk.id: h.chunk for h in retrieval.hits}
    assert retrieval.evidence
    for e in retrieval.evidence:
        chunk = chunks[e.chunk_id]
        assert (e.start, e.end) in chunk.sentences
        assert chunk.text[e.start - chunk.start : e.end - chunk.start] == e.text
    assert "كايل أورتون" in retrieval.evidence[0].text


def test_langchain_retriever_and_chain(seeded):
    from qa.chain import QARetriever, answer_chain

    docs = QARetriever(retriever=seeded.retriever, k=3).invoke("ماذا نفى الكرملين؟")
    assert len(docs) == 3
    assert all(d.metadata["doc"] == "000_30343400e31c82a3.txt" for d in docs)
    assert any("الكرملين" in d.page_content for d in docs)

    seen = []

    def spy(retrieval, request, services):  # another answer mode plugs in after retrieval
        seen.append(retrieval.question)
        return (yield from answer_mode_extractive(retrieval, request, services))

    plugins.register_mode(plugins.Mode("spy", "records what it was given", spy))
    chain = answer_chain(seeded.retrieve, seeded)
    events = list(chain.stream(seeded.request("Who is Kyle Orton?", mode="spy")))
    answer = events[-1]
    assert seen == ["Who is Kyle Orton?"] and answer.citations and "answer" in answer.timings_ms
    asked = seeded.ask("Who is Kyle Orton?", mode="spy")  # ask runs the same chain
    assert (asked.answer, asked.citations) == (answer.answer, answer.citations)
