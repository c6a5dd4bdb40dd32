"""LangChain adapters: retrieval as a `BaseRetriever`, question → answer events as one runnable chain.

The pipeline itself speaks plain dataclasses; these thin wrappers let LangChain code use it. The
chain is `retrieve | answer`: a `RunnableLambda` that resolves the `Request` to a `Retrieval`
(or passes on one made elsewhere, as evaluation does) and a `RunnableGenerator` that runs the
request's answer mode and yields its events, then the final `Answer` with its timings built once.
Every ask, stream and evaluation goes through `chain.stream(...)`, so they cannot differ.
Leaves out: ranking and wording, which live in retrieve.py, answer.py and the modes.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterator

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document as LCDocument
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables import Runnable, RunnableGenerator, RunnableLambda
from pydantic import ConfigDict

from qa import plugins
from qa.answer import Answer
from qa.retrieve import Retrieval, Retriever
from qa.stream import Draft, Event, Request


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


def _finish(answer: Answer, request: Request, t0: float, t_answer: float) -> Answer:
    """The answer as the user asked it, with the timings of this run added once (ms)."""
    now = time.perf_counter()
    timings = {**answer.timings_ms, "answer": (now - t_answer) * 1000, "total": (now - t0) * 1000}
    return dataclasses.replace(answer, question=request.question, timings_ms=timings)


def answer_chain(
    retrieve: Callable[[Request], Retrieval],
    services: plugins.Services,
    *,
    annotate: Callable[[Answer], Answer] | None = None,
) -> Runnable:
    """A runnable from a `Request` to its events: `Delta`s, `Draft`s, and the final `Answer` last.

    `retrieve` maps a request to a `Retrieval` (e.g. `Assistant.retrieve`, which resolves follow-ups).
    `annotate`, when given, finishes every draft and answer (e.g. `Assistant.recognised`, the OCR
    boxes and confidence of citations from scans). Call it with `.stream(request)`;
    `qa.stream.AnswerStream` wraps that iterator.
    """
    finish_with = annotate or (lambda answer: answer)

    def finish(answer: Answer, request: Request, t0: float, t_answer: float) -> Answer:
        return finish_with(_finish(answer, request, t0, t_answer))

    def retrieve_step(request: Request) -> tuple[Request, Retrieval, float]:
        t0 = time.perf_counter()
        if request.retrieval is not None:  # made elsewhere: its own time still counts in "total"
            return request, request.retrieval, t0 - request.retrieval.timings_ms.get("retrieve", 0.0) / 1000
        return request, retrieve(request), t0

    def answer_step(items: Iterator[tuple[Request, Retrieval, float]]) -> Iterator[Event | Answer]:
        for request, retrieval, t0 in items:
            mode = plugins.get_mode(request.mode)
            t_answer = time.perf_counter()
            events = mode.run(retrieval, request, services)
            while True:
                try:
                    event = next(events)
                except StopIteration as stop:  # the mode's return value is its final Answer
                    final = stop.value
                    break
                yield (
                    Draft(finish(event.answer, request, t0, t_answer)) if isinstance(event, Draft) else event
                )
            yield finish(final, request, t0, t_answer)

    return RunnableLambda(retrieve_step).with_config(run_name="retrieve") | RunnableGenerator(
        answer_step
    ).with_config(run_name="answer")
