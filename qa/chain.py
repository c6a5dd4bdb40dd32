"""LangChain adapters: retrieval as a `BaseRetriever`, question → answer as a runnable chain.

The pipeline itself speaks plain dataclasses; these thin wrappers let LangChain code use it, and
let answer modes plug in after retrieval without touching it: a mode is any function
`(Retrieval, inputs) -> Answer`. Leaves out: ranking and wording, which live in retrieve.py and
answer.py.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document as LCDocument
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables import Runnable, RunnableLambda
from pydantic import ConfigDict

from qa.answer import Answer
from qa.retrieve import Retrieval, Retriever


class QARetriever(BaseRetriever):
    """The hybrid retriever as LangChain documents: one per chunk, scores and evidence in metadata."""

    model_config = ConfigDict(arbitrary_types_allowed=True)
    retriever: Retriever
    k: int | None = None

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun
    ) -> list[LCDocument]:
        retrieval = self.retriever.retrieve(query, k=self.k)
        evidence_by_chunk: dict[str, list[dict]] = {}
        for e in retrieval.evidence:
            evidence_by_chunk.setdefault(e.chunk_id, []).append(
                {"start": e.start, "end": e.end, "score": e.score}
            )
        return [
            LCDocument(
                page_content=h.chunk.text,
                id=h.chunk.id,
                metadata={
                    "doc": h.chunk.doc_id,
                    "paragraph": h.chunk.paragraph,
                    "start": h.chunk.start,
                    "end": h.chunk.end,
                    "score": h.score,
                    "evidence": evidence_by_chunk.get(h.chunk.id, []),
                },
            )
            for h in retrieval.hits
        ]


AnswerMode = Callable[[Retrieval, dict], Answer]
StreamMode = Callable[[Retrieval, dict], Iterator[str | Answer]]


def answer_chain(retrieve: Callable[[dict], Retrieval], mode: AnswerMode) -> Runnable:
    """A runnable taking {"question", "k"?, ...} and returning an `Answer` made by `mode`.

    `retrieve` maps the inputs to a `Retrieval` (e.g. `Assistant.retrieve`, which resolves follow-ups).
    """

    def retrieve_step(inputs: dict[str, Any]) -> dict[str, Any]:
        return {**inputs, "retrieval": retrieve(inputs)}

    def answer(inputs: dict[str, Any]) -> Answer:
        t0 = time.perf_counter()
        result = mode(inputs["retrieval"], inputs)
        result.timings_ms.setdefault("answer", (time.perf_counter() - t0) * 1000)
        return result

    return RunnableLambda(retrieve_step).with_config(run_name="retrieve") | RunnableLambda(
        answer
    ).with_config(run_name="answer")
