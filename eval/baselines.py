"""Baselines on the same documents and embedder, answering in the shape of `Answer.to_dict()`.

`naive` is what a typical LangChain tutorial builds: `RecursiveCharacterTextSplitter` (1000
characters, overlap 200), a `langchain_chroma.Chroma` store with our embedder, similarity top-k,
the top chunk as the answer and the k retrieved chunks, whole, as its citations. `bm25` ranks the
same chunks with bm25s (Lucene BM25, as qa/lexical.py) over our normalised Arabic tokens. Neither abstains.
Leaves out: scoring (metrics.py) and anything our pipeline does beyond this (sentences, fusion).
"""

from __future__ import annotations

import bisect
import time
from dataclasses import dataclass

import numpy as np

from qa import lexical as qlexical
from qa import text as qtext

NAMES = ("naive", "bm25")


@dataclass(frozen=True)
class Passage:
    """A retrieved chunk: its exact span in a document and its score."""

    doc: str
    start: int
    end: int
    text: str
    score: float


def split(texts: dict[str, str]) -> list[Passage]:
    """The tutorial splitter's chunks of every document, with offsets from `add_start_index`."""
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    splitter = RecursiveCharacterTextSplitter(chunk_size=1000, chunk_overlap=200, add_start_index=True)
    docs = splitter.create_documents(list(texts.values()), metadatas=[{"doc": d} for d in texts])
    return [
        Passage(
            d.metadata["doc"],
            d.metadata["start_index"],
            d.metadata["start_index"] + len(d.page_content),
            d.page_content,
            0.0,
        )
        for d in docs
    ]


class Baseline:
    """A ranking of fixed chunks; `answer` turns the top ones into an answer dict."""

    name = "baseline"

    def __init__(self, passages: list[Passage], texts: dict[str, str]) -> None:
        self.passages = passages
        # paragraph starts per document, to report the paragraph a chunk begins in
        self._paragraphs = {d: [s.start for s in qtext.paragraphs(t)] for d, t in texts.items()}

    def retrieve(self, question: str, k: int) -> list[Passage]:
        raise NotImplementedError

    def answer(self, question: str, *, k: int, k_retrieve: int) -> tuple[dict, list[Passage]]:
        """The answer dict (top chunk as the answer, top `k` chunks cited) and the top `k_retrieve`."""
        t0 = time.perf_counter()
        ranked = self.retrieve(question, max(k, k_retrieve))
        t1 = time.perf_counter()
        cited = ranked[:k]
        citations = [
            {
                "n": n,
                "doc": p.doc,
                "chunk_id": f"{p.doc}:{p.start}:{p.end}",
                "start": p.start,
                "end": p.end,
                "quote": p.text,
                "paragraph": max(0, bisect.bisect_right(self._paragraphs.get(p.doc, [0]), p.start) - 1),
                "score": round(p.score, 4),
            }
            for n, p in enumerate(cited, start=1)
        ]
        answer = cited[0].text if cited else ""
        t2 = time.perf_counter()
        result = {
            "question": question,
            "question_lang": qtext.detect_language(question),
            "answer": answer,
            "answer_lang": qtext.detect_language(answer),
            "mode": self.name,
            "abstained": False,
            "note": None,
            "citations": citations,
            "closest": [],
            "timings_ms": {
                "retrieve": round((t1 - t0) * 1000, 1),
                "answer": round((t2 - t1) * 1000, 1),
                "total": round((t2 - t0) * 1000, 1),
            },
        }
        return result, ranked


class NaiveRAG(Baseline):
    """LangChain tutorial RAG: Chroma similarity search over 1000-character chunks."""

    name = "naive"

    def __init__(
        self, passages: list[Passage], texts: dict[str, str], *, embedder, client, collection: str
    ) -> None:
        from langchain_chroma import Chroma
        from langchain_core.documents import Document

        super().__init__(passages, texts)
        self.store = Chroma(
            client=client,
            collection_name=collection,
            embedding_function=embedder,
            collection_metadata={"hnsw:space": "cosine"},
        )
        if passages:
            self.store.add_documents(
                [Document(p.text, metadata={"doc": p.doc, "start": p.start, "end": p.end}) for p in passages],
                ids=[f"{p.doc}:{p.start}:{p.end}" for p in passages],
            )

    def retrieve(self, question: str, k: int) -> list[Passage]:
        found = self.store.similarity_search_with_score(question, k=min(k, len(self.passages)))
        return [
            Passage(d.metadata["doc"], d.metadata["start"], d.metadata["end"], d.page_content, 1.0 - dist)
            for d, dist in found
        ]


class BM25Baseline(Baseline):
    """BM25 (bm25s, Lucene form, k1 and b as qa.lexical) over the same chunks, with our Arabic tokens."""

    name = "bm25"

    def __init__(self, passages: list[Passage], texts: dict[str, str]) -> None:
        super().__init__(passages, texts)
        self.bm25 = qlexical.build_bm25([qtext.tokens(p.text) for p in passages])

    def retrieve(self, question: str, k: int) -> list[Passage]:
        if not self.passages:
            return []
        scores = qlexical.bm25_query(self.bm25, qtext.tokens(question), n_rows=len(self.passages))
        order = np.argsort(-scores, kind="stable")[:k]
        return [
            Passage(p.doc, p.start, p.end, p.text, float(scores[i]))
            for i in order
            for p in [self.passages[i]]
        ]
