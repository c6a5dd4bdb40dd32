"""The assistant: one object that wires the stages together for the CLI, the web UI and evaluation.

Nothing loads until it is first needed: listing documents opens Chroma but not the embedding
model; the first question loads the model once for the process. Answer modes are registered by
name; `extractive` is built in, `generative` comes from llm.py.
Leaves out: user messages (the edges turn `QAError`s into text) and any UI.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterator
from functools import cached_property
from pathlib import Path

from qa import answer as qanswer
from qa import ingest as qingest
from qa.chain import AnswerMode, StreamMode, answer_chain
from qa.config import Settings, get_settings
from qa.errors import InputError, QAError


def _extractive(retrieval, inputs) -> qanswer.Answer:
    return qanswer.extractive(retrieval, inputs["settings"])


class Assistant:
    """Ingest documents and answer questions about them, under one `Settings`."""

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or get_settings()
        self.modes: dict[str, AnswerMode] = {"extractive": _extractive}
        # Modes that can stream: (Retrieval, inputs) -> iterator of text deltas, then the Answer.
        self.stream_modes: dict[str, StreamMode] = {}
        # Rewrites a follow-up as a standalone question: (question, history) -> str; set by qa.llm.
        self.condense: Callable[[str, list[tuple[str, str]]], str] | None = None

    @cached_property
    def store(self):
        from qa.store import Store, connect

        s = self.settings
        client = connect(chroma_path=s.chroma_path, chroma_url=s.chroma_url)
        return Store(client, name=s.collection, embedding_model=s.embedding_model)

    @cached_property
    def embedder(self):
        from qa.embeddings import load_embedder

        s = self.settings
        return load_embedder(s.embedding_model, s.models_dir, s.threads, s.embedding_batch_size)

    @cached_property
    def retriever(self):
        from qa.retrieve import Retriever

        return Retriever(self.store, self.embedder, self.settings)

    def ingest(self, paths: list[Path], *, encoding: str | None = None, progress: bool = True):
        """Index files and folders; every file is read and checked before the index is touched."""
        files = qingest.expand_paths(paths)
        if not files:
            raise InputError("No supported files found (.txt, .md, .html, .pdf, .docx).")
        docs = [qingest.read_document(f, encoding=encoding, max_mb=self.settings.max_file_mb) for f in files]
        ids = [d.id for d in docs]
        if len(set(ids)) != len(ids):
            dupes = sorted({i for i in ids if ids.count(i) > 1})
            raise InputError(f"Two files share the name {dupes[0]}; documents are identified by file name.")
        return qingest.index_documents(
            docs, store=self.store, embedder=self.embedder, settings=self.settings, progress=progress
        )

    def ask(
        self,
        question: str,
        *,
        k: int | None = None,
        mode: str | None = None,
        answer_language: str | None = None,
        history: list[tuple[str, str]] | None = None,
    ) -> qanswer.Answer:
        """Answer one question (with earlier turns as `history` for follow-ups)."""
        t0 = time.perf_counter()
        question = qanswer.check_question(question, max_chars=self.settings.max_question_chars)
        mode = self._mode(mode)
        chain = answer_chain(self.retrieve, self.modes[mode])
        result = chain.invoke({**self._inputs(question, k, answer_language, history), "mode": mode})
        result = dataclasses.replace(result, question=question)  # the user's words, not the standalone form
        result.timings_ms["total"] = (time.perf_counter() - t0) * 1000
        return result

    def stream(
        self,
        question: str,
        *,
        k: int | None = None,
        mode: str | None = None,
        answer_language: str | None = None,
        history: list[tuple[str, str]] | None = None,
    ) -> Iterator[str | qanswer.Answer]:
        """Like `ask`, but yield text deltas as they are produced, and the final `Answer` last.

        A mode without streaming yields its whole answer text once, then the `Answer`.
        """
        mode = mode or self.settings.answer_mode
        if mode not in self.stream_modes:
            result = self.ask(question, k=k, mode=mode, answer_language=answer_language, history=history)
            yield result.answer
            yield result
            return
        t0 = time.perf_counter()
        question = qanswer.check_question(question, max_chars=self.settings.max_question_chars)
        inputs = {**self._inputs(question, k, answer_language, history), "mode": mode}
        retrieval = self.retrieve(inputs)
        for item in self.stream_modes[mode](retrieval, inputs):
            if isinstance(item, qanswer.Answer):
                item = dataclasses.replace(item, question=question)
                item.timings_ms["total"] = (time.perf_counter() - t0) * 1000
            yield item

    def retrieve(self, inputs: dict):
        """Retrieve for a question, resolving a follow-up against the conversation first.

        With an LLM condenser (generative mode) the follow-up is rewritten as a standalone question.
        Otherwise both the question alone and the question after the previous one are tried, and the
        retrieval with the stronger evidence wins: a follow-up ("Which newspaper did he speak to?")
        needs its context, a change of topic does not. Costs one more query embedding, only then.
        """
        question, k, history = inputs["question"], inputs.get("k"), inputs.get("history") or []
        if not history:
            return self.retriever.retrieve(question, k=k)
        if self.condense and inputs.get("mode", "extractive") != "extractive":
            try:
                return self.retriever.retrieve(self.condense(question, history), k=k)
            except QAError:
                pass  # the LLM is unavailable: fall back to the cheap way below
        alone = self.retriever.retrieve(question, k=k)
        joined = self.retriever.retrieve(f"{history[-1][0]} {question}", k=k)

        def best(r) -> float:
            return r.evidence[0].score if r.evidence else float("-inf")

        chosen = joined if best(joined) > best(alone) else alone
        return dataclasses.replace(chosen, language=alone.language)

    def answer_retrieval(
        self,
        retrieval,
        *,
        mode: str | None = None,
        k: int | None = None,
        answer_language: str | None = None,
        history: list[tuple[str, str]] | None = None,
    ) -> qanswer.Answer:
        """Answer from a `Retrieval` made elsewhere (evaluation reuses one retrieval for several uses)."""
        mode = self._mode(mode)
        t0 = time.perf_counter()
        result = self.modes[mode](retrieval, self._inputs(retrieval.question, k, answer_language, history))
        result.timings_ms.setdefault("answer", (time.perf_counter() - t0) * 1000)
        return result

    def _mode(self, mode: str | None) -> str:
        """The answer mode to use: the given one or the setting; a clear error for an unknown one."""
        mode = mode or self.settings.answer_mode
        if mode not in self.modes:
            raise InputError(f"Unknown answer mode {mode!r}; choose one of: {', '.join(self.modes)}.")
        return mode

    def _inputs(self, question, k, answer_language, history) -> dict:
        settings = self.settings
        if answer_language and answer_language != settings.answer_language:
            settings = settings.model_copy(update={"answer_language": answer_language})
        return {"question": question, "k": k, "settings": settings, "history": history or []}

    def documents(self):
        return self.store.documents()

    def remove(self, doc_id: str) -> bool:
        return self.store.remove_document(doc_id)

    def reset(self) -> None:
        self.store.reset()
