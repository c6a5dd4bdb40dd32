"""Overview: what a whole document is about, told in its own most central sentences, cited.

A question about a document as a whole ("What is this article about?", "Summarize the article",
«عمّ يتحدث المقال؟», «لخّص المقال») is close to no single sentence, so retrieval alone abstains on
it. Such questions (`is_about_document`) are answered with the document's overview: the
`OVERVIEW_SENTENCES` sentences nearest the centroid of its sentence vectors (the centroid method of
MEAD, Radev et al. 2004, on the vectors the index already holds), shown in document order and cited
like any quote, so `quote == document[start:end]` as everywhere else. The document is the one
retrieval ranks first for the question (the only one, in a one-document index); with several
indexed, the answer's note names it and says how many there are.

Example:
    is_about_document("What is this article about?") is True

Leaves out: a generated gist (a free-form summary from a 1.5B model cannot be checked well enough
to show; the short answer step does not run on overviews) and summaries across several documents.
"""

from __future__ import annotations

import re

import numpy as np

from qa import answer as qanswer
from qa import text as qtext
from qa.retrieve import Evidence, Hit, Retrieval
from qa.store import sentence_id

# Chosen by reading the seed article's overview: its three sentences are the American proposal (with
# the joint operations room), the Russian denial and the Kremlin's statement, its three threads.
OVERVIEW_SENTENCES = 3

# Matched on normalised text (qa.text.normalize: no diacritics, one alef, ى→ي, ة→ه, lower case).
_ABOUT_PATTERN = r"""
    \b(?:what|whats|what's)\s+(?:is|are)\s+(?:this|the)\s+(?:article|document|text|story|report|file|page)s?\s+(?:about|on)\b
    | \bwhat\s+(?:does|do)\s+(?:this|the)\s+(?:article|document|text|story|report)\s+(?:say|cover|discuss|talk\s+about)\s*\??$
    | \b(?:summari[sz]e|summary\s+of|sum\s+up|give\s+me\s+(?:a|an)\s+(?:summary|overview|gist)|overview\s+of|gist\s+of|tl;?dr)\b
    | \bmain\s+(?:points?|idea|topic|takeaways?)\b
    | (?:عم|عما|عن\s+ماذا|ما\s+موضوع|ما\s+هو\s+موضوع|ماذا\s+يقول|بماذا\s+يتحدث|عن\s+أي\s+شيء)\s*(?:يتحدث|يتكلم|يدور)?\s*(?:هذا\s+|ال)?(?:مقال|نص|خبر|وثيقة|تقرير|مستند)
    | (?:لخص|تلخيص|ملخص|خلاصة|الفكرة\s+الرئيسية|النقاط\s+الرئيسية)
    """
_ABOUT = re.compile(qtext.normalize(_ABOUT_PATTERN), re.X)

PHRASES = {
    "en": {
        "lead": "In brief, in the document's own words: ",
        "item": "{n} «{quote}»",
        "which": "{count} documents are indexed; this is the overview of {doc}, the one closest to the "
        "question. Name another in the question for its overview.",
    },
    "ar": {
        "lead": "باختصار، بكلمات الوثيقة نفسها: ",
        "item": "{n} «{quote}»",
        "which": "في الفهرس {count} وثائق؛ هذه خلاصة {doc}، الأقرب إلى السؤال. اذكر وثيقة أخرى في السؤال لتحصل "
        "على خلاصتها.",
    },
}


def is_about_document(question: str) -> bool:
    """True for a question about a document as a whole (its gist, a summary, its main points).

    Example: is_about_document("لخّص المقال") is True; is_about_document("Who is Kyle Orton?") is False
    """
    return bool(_ABOUT.search(qtext.normalize(question.strip())))


def central_sentences(retriever, doc_id: str, *, n: int = OVERVIEW_SENTENCES) -> list[Evidence]:
    """The `n` sentences of `doc_id` nearest the centroid of its sentence vectors, in document order.

    Scores are the cosine to the (re-normalised) centroid. Empty when the document has no sentences.
    """
    chunks = retriever.store.document_chunks(doc_id)
    sha = chunks[0].doc_sha if chunks else ""
    spans: dict[tuple[int, int], tuple[str, int, str, int | None]] = {}
    for c in chunks:
        for a, b in c.sentences:
            spans.setdefault((a, b), (c.id, c.paragraph, c.text_of(a, b), c.page))
    ids = {sentence_id(doc_id, a, b, sha): (a, b) for a, b in spans}
    vectors = retriever.store.sentence_vectors(list(ids))
    if not vectors:
        return []
    keys = list(vectors)
    matrix = np.stack([vectors[k] for k in keys])
    centroid = matrix.mean(axis=0)
    centroid /= max(float(np.linalg.norm(centroid)), 1e-12)
    scores = matrix @ centroid
    best = sorted(np.argsort(-scores)[:n].tolist(), key=lambda i: ids[keys[i]])
    out = []
    for i in best:
        a, b = ids[keys[i]]
        chunk_id, paragraph, text, page = spans[a, b]
        score = float(scores[i])
        out.append(Evidence(doc_id, chunk_id, paragraph, a, b, text, score, score, 0.0, page))
    return out


def overview_answer(retrieval: Retrieval, retriever, settings) -> qanswer.Answer:
    """The overview of the document retrieval ranks first, as a cited `Answer` (mode "overview").

    Abstains (as the extractive mode does) when nothing is indexed.
    """
    lang = qanswer.answer_language(retrieval, settings.answer_language)
    if not retrieval.hits:
        return qanswer.abstain(retrieval, lang=lang, mode="overview")
    doc_id = retrieval.hits[0].chunk.doc_id
    evidence = central_sentences(retriever, doc_id)
    # Citations need the chunks they sit in.
    wanted = {e.chunk_id for e in evidence}
    hits = tuple(
        Hit(c, 0.0, 0.0, 0.0, 0.0) for c in retriever.store.document_chunks(doc_id) if c.id in wanted
    )
    citations = qanswer.to_citations(evidence, hits)
    phrases = PHRASES[lang]
    items = " ".join(phrases["item"].format(n=f"[{c.n}]", quote=c.quote) for c in citations)
    # With several documents, say which one this is: a user asking "the article" may mean another
    # (a new user's question got the overview of a note they had uploaded, with no word of it).
    count = len(retriever.store.documents())
    note = phrases["which"].format(count=count, doc=f"«{doc_id}»") if count > 1 else None
    return qanswer.Answer(
        question=retrieval.question,
        question_lang=retrieval.language,
        answer=phrases["lead"] + items,
        mode="overview",
        abstained=False,
        citations=citations,
        timings_ms=dict(retrieval.timings_ms),
        answer_lang=lang,
        note=note,
    )
