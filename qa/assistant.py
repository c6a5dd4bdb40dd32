"""The assistant: one object that wires the stages together for the CLI, the web UI and evaluation.

Nothing loads until it is first needed: listing documents opens Chroma but not the embedding
model; the first question loads the model once for the process. Answer modes and LLM backends
come from the registry (`qa.plugins`), so the `QA_ANSWER_MODE` setting and a `mode=` argument
resolve the same way. `ask`, `stream` and `answer_retrieval` all run the one LangChain chain
(`qa.chain.answer_chain`): `ask` is `stream(...).answer()`.

Example:
    Assistant().ask("What did the Kremlin deny?").citations[0].quote

Leaves out: user messages (the edges turn `QAError`s into text) and any UI.
"""

from __future__ import annotations

import dataclasses
import re
import time
from functools import cached_property
from pathlib import Path

from qa import answer as qanswer
from qa import ingest as qingest
from qa import plugins
from qa import text as qtext
from qa.chain import answer_chain
from qa.condense import condense_question
from qa.config import Settings, get_settings
from qa.embeddings import load_embedder
from qa.errors import InputError, QAError, StoreError
from qa.ocr import OcrStore, Recogniser
from qa.ocr import annotate as ocr_annotate
from qa.records import Records
from qa.retrieve import Retrieval, Retriever
from qa.store import Store, connect, release_path
from qa.stream import AnswerStream, Request
from qa.translate import TranslationStore, translate_answer


class Assistant:
    """Ingest documents and answer questions about them, under one `Settings`."""

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or get_settings()

    @cached_property
    def store(self):
        """The index: Chroma and the documents record beside it (`StoreError` when damaged)."""
        s = self.settings

        def reconnect():
            return connect(chroma_path=s.chroma_path, chroma_url=s.chroma_url)

        records = Records(s.chroma_path, s.collection)
        return Store(
            reconnect(),
            name=s.collection,
            embedding_model=s.embedding_model,
            records=records,
            reconnect=None if s.chroma_url else reconnect,
        )

    @cached_property
    def embedder(self):
        s = self.settings
        return load_embedder(s.embedding_model, s.models_dir, s.threads, s.embedding_batch_size)

    @cached_property
    def second_embedder(self):
        """The second embedder that rescores candidates, or None when `QA_SECOND_EMBEDDING_MODEL` is empty."""
        s = self.settings
        if not s.second_embedding_model:
            return None
        return load_embedder(s.second_embedding_model, s.models_dir, s.threads, s.embedding_batch_size)

    @cached_property
    def retriever(self):
        return Retriever(self.store, self.embedder, self.settings, second=self.second_embedder)

    @cached_property
    def chain(self):
        """The LangChain runnable every answer goes through (built once)."""
        return answer_chain(self.retrieve, self, annotate=self.recognised)

    @cached_property
    def ocr_store(self) -> OcrStore:
        """The recognised words of the indexed scans (qa.ocr), beside the index."""
        return OcrStore(self.settings.ocr_path)

    def recognised(self, answer: qanswer.Answer) -> qanswer.Answer:
        """The answer with each citation read from a scan given its page boxes and OCR confidence."""
        store = self.store

        def pages_of(doc_id: str):
            return self.ocr_store.pages(store.document_sha(doc_id))

        return ocr_annotate(answer, pages_of)

    def chat_model(self, *, max_tokens: int | None = None, settings: Settings | None = None):
        """The configured LLM backend as a LangChain chat model; `LLMError` when it is not usable."""
        settings = settings or self.settings
        backend = plugins.get_backend(settings.llm_backend)
        return backend.make(settings, max_tokens or settings.llm_max_tokens)

    def ingest(self, paths: list[Path], *, encoding: str | None = None, progress: bool = True):
        """Index files and folders; every file is read and checked before the index is touched.

        Each file keeps one identity (`identify`); a file whose text is already indexed under
        another path is skipped and reported in `IngestReport.duplicates`. Raises `InputError`
        naming every file that cannot be used (nothing is written then), `StoreError` for the index.
        """
        files = qingest.expand_paths(paths)
        if not files:
            raise InputError("No supported files found (.txt, .md, .html, .pdf, .docx, or an image).")
        docs, refused = [], []
        ocr = Recogniser.from_settings(self.settings, progress=progress)
        for f in files:  # every file is checked, so one message names all that cannot be used
            try:
                docs.append(
                    qingest.read_document(f, encoding=encoding, max_mb=self.settings.max_file_mb, ocr=ocr)
                )
            except InputError as exc:
                refused.append(str(exc).rstrip("."))
        if len(refused) == 1:
            raise InputError(refused[0] + ".")
        if refused:
            raise InputError(
                f"{len(refused)} files cannot be used, so nothing was indexed: " + "; ".join(refused) + "."
            )
        docs, duplicates = self.identify(docs)
        self.store.sweep()  # records a killed write left behind
        for doc in docs:  # a scan's words first, so that its citations find their boxes once indexed
            self.ocr_store.save(doc.sha256, doc.ocr)
        second = self.second_embedder
        report = qingest.index_documents(
            docs,
            store=self.store,
            embedder=self.embedder,
            settings=self.settings,
            second=second,
            progress=progress,
        )
        # documents indexed before the record kept their vectors, or before the second embedder was set
        qingest.add_kept_vectors(self.store, second, progress=progress)
        # Bring the saved lexical index up to date now, so the next process loads it as it is.
        self.retriever.lexical(background=False)
        return dataclasses.replace(report, duplicates=tuple(duplicates))

    def identify(self, docs: list[qingest.Document]):
        """Give each document its identity, and set aside those whose text is indexed elsewhere.

        A path indexed before keeps its id. A new path gets its file name, or, when another path
        already has that name, the shortest tail of its own path that is free ("b/report.txt").
        Returns (documents to index, [(source path, id of the document with the same text)]).
        """
        store = self.store
        taken = {d.id: d.source for d in store.documents()}
        by_sha = {d.sha256: d.id for d in store.documents()}
        out, duplicates = [], []
        for doc in docs:
            known = store.records.by_source(doc.source)
            doc_id = known.id if known else _free_id(doc.source, taken)
            same = by_sha.get(doc.sha256)
            if same is not None and same != doc_id:
                duplicates.append((doc.source, same))
                continue
            taken[doc_id] = doc.source
            by_sha[doc.sha256] = doc_id
            out.append(dataclasses.replace(doc, id=doc_id))
        return out, duplicates

    def request(
        self,
        question: str,
        *,
        k: int | None = None,
        mode: str | None = None,
        answer_language: str | None = None,
        history: list[tuple[str, str]] | None = None,
    ) -> Request:
        """A checked `Request`: the question stripped and within limits, the mode known.

        Raises `InputError` for an empty or oversized question or an unknown mode.
        """
        question = qanswer.check_question(question, max_chars=self.settings.max_question_chars)
        mode = plugins.get_mode(mode or self.settings.answer_mode).name
        settings = self.settings
        if answer_language and answer_language != settings.answer_language:
            settings = settings.model_copy(update={"answer_language": answer_language})
        return Request(question, mode, settings, k, tuple(tuple(t) for t in history or ()))

    def stream(self, question: str, **options) -> AnswerStream:
        """Answer one question as a stream: iterate for text deltas, `.answer()` for the `Answer`.

        Options as `request()`; a checked question and known mode are required before anything
        runs (so errors surface here, not mid-iteration).
        """
        return self.stream_request(self.request(question, **options))

    def stream_request(self, request: Request) -> AnswerStream:
        """The answer stream for a checked `Request`."""
        return AnswerStream(self.chain.stream(request))

    def ask(self, question: str, **options) -> qanswer.Answer:
        """Answer one question (options as `request()`; earlier turns as `history` for follow-ups)."""
        return self.stream(question, **options).answer()

    def answer_retrieval(
        self, retrieval: Retrieval, *, question: str | None = None, **options
    ) -> qanswer.Answer:
        """Answer from a `Retrieval` made elsewhere (evaluation reuses one retrieval for several uses).

        `question`: the user's own words when they differ from the text retrieved for (a follow-up
        that `retrieve` joined to the previous question); the reader reads these.
        """
        request = self.request(question or retrieval.question, **options)
        request = dataclasses.replace(request, retrieval=retrieval)
        return self.stream_request(request).answer()

    @cached_property
    def translations(self):
        return TranslationStore(self.settings.translations_path)

    def translate(self, answer: qanswer.Answer, *, lang: str | None = None) -> qanswer.Answer:
        """The answer with each cited sentence translated into `lang` (default: the answer's), checked.

        Raises `LLMError` when the LLM backend is not usable.
        """
        return translate_answer(answer, lang=lang, services=self, store=self.translations)

    def retrieve(self, request: Request) -> Retrieval:
        """Retrieve for a request, resolving a follow-up against the conversation first.

        With an LLM mode the follow-up is condensed into a standalone question by the LLM. Otherwise
        both the question alone and the question after the previous one are tried, and the retrieval
        with the stronger evidence wins: a follow-up ("Which newspaper did he speak to?") needs its
        context, a change of topic does not. Costs one more query embedding, only then. An English
        question that names its subject (`may_follow_up` is False) is read alone.
        """
        question, k, history = request.question, request.k, list(request.history)
        if not history:
            return self.retriever.retrieve(question, k=k)
        if plugins.get_mode(request.mode).uses_llm:
            try:
                standalone = condense_question(
                    question, history, model=self.chat_model(max_tokens=64), settings=self.settings
                )
                return self.retriever.retrieve(standalone, k=k)
            except QAError:
                pass  # the LLM is unavailable: fall back to the cheap way below
        alone = self.retriever.retrieve(question, k=k)
        if not may_follow_up(question):
            return alone
        joined = self.retriever.retrieve(f"{history[-1][0]} {question}", k=k)

        def best(r) -> float:
            return r.evidence[0].score if r.evidence else float("-inf")

        chosen, other = (joined, alone) if best(joined) > best(alone) else (alone, joined)
        # The stronger score often just means "more words of the previous topic": the reader (when
        # on) also sees the other reading's best sentence and picks the one that answers.
        spans = {(e.doc_id, e.start, e.end) for e in chosen.evidence}
        extra = [e for e in other.evidence[:1] if (e.doc_id, e.start, e.end) not in spans]
        held = {h.chunk.id for h in chosen.hits}
        hits = chosen.hits + tuple(h for h in other.hits if h.chunk.id in {e.chunk_id for e in extra} - held)
        return dataclasses.replace(chosen, language=alone.language, hits=hits, alternatives=tuple(extra))

    def documents(self):
        """Every indexed document (`qa.records.DocInfo`), from the documents record."""
        return self.store.documents()

    @property
    def uploads_dir(self) -> Path:
        """Where the page stages an upload while it is indexed (beside the index; emptied after)."""
        return Path(self.settings.chroma_path).parent / "uploads"

    def source_label(self, info) -> str:
        """Where a document (`DocInfo`) came from, for people: its path, or "uploaded through the
        page" for an upload, whose staged copy is deleted once indexed (its path would lead nowhere)."""
        if Path(info.source).parent == self.uploads_dir.expanduser().resolve():
            return "uploaded through the page (the file is not kept)"
        return info.source

    def resolve(self, ref: str) -> str | None:
        """The id of the document a reference names: an id, or a path (as given or resolved)."""
        store = self.store
        if store.document(ref) is not None:
            return ref
        info = store.records.by_source(str(Path(ref).expanduser().resolve()))
        return info.id if info else None

    def remove(self, ref: str) -> bool:
        """Remove the document named by an id or a path; False when it is not indexed."""
        doc_id = self.resolve(ref)
        if doc_id is None:
            return False
        sha = self.store.document_sha(doc_id)
        removed = self.store.remove_document(doc_id)
        if removed:
            self.ocr_store.forget(sha)
        return removed

    def reset(self) -> Path | None:
        """Empty the index. A damaged embedded index is moved aside (to a `.damaged-<time>` sibling)
        and a new one started; returns where it went, or None when nothing was damaged."""
        try:
            self.store.reset()
            return None
        except StoreError:
            if self.settings.chroma_url or not self.settings.chroma_path.exists():
                raise
        self.__dict__.pop("store", None)
        path = self.settings.chroma_path
        aside = path.with_name(f"{path.name}.damaged-{time.strftime('%Y%m%d-%H%M%S')}")
        release_path(str(path))  # chromadb keeps one client per path per process: drop the old one
        path.rename(aside)
        self.store.reset()
        return aside


# What points back to an earlier turn in an English question: a pronoun or a "what about". Without
# one, the question stands alone: "Where would the joint operations room be?", asked after a
# question about Zakharova, was joined to it and answered from her sentence ("In the region of
# Aleppo", checked), though alone it gets "in Jordan".
_BACK_REFERENCE = re.compile(
    r"\b(?:he|him|his|she|her|hers|it|its|they|them|their|theirs|this|that|these|those|there|then|"
    r"such|the same|what about|how about|else|other|former|latter)\b|^\W*(?:and|also|so|but)\b",
    re.I,
)
# A question this short may lean on the previous one whatever its words ("Why?", "And Lavrov?").
SHORT_QUESTION_WORDS = 3


def may_follow_up(question: str) -> bool:
    """Whether `question` may lean on the previous turn: any question not in English (Arabic drops
    its subject pronouns: «منذ متى يشغل منصب المتحدث؟» is a follow-up with no pronoun to find), a
    very short one, or one with a word that points back (`_BACK_REFERENCE`).

    Example: may_follow_up("Where would the joint operations room be?") is False
    """
    if qtext.detect_language(question) != "en":
        return True
    return len(question.split()) <= SHORT_QUESTION_WORDS or bool(_BACK_REFERENCE.search(question))


def _free_id(source: str, taken: dict[str, str]) -> str:
    """The shortest tail of `source` not taken by another path.

    Example: _free_id("/d/b/report.txt", {"report.txt": "/d/a/report.txt"}) == "b/report.txt"
    """
    parts = Path(source).parts
    for n in range(1, len(parts) + 1):
        candidate = "/".join(parts[-n:])
        if taken.get(candidate, source) == source:
            return candidate
    return source
