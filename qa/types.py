"""The plain types every stage passes on: a question (`Request`), the events of its answer
(`Delta`, `Draft`), and the answer itself (`Answer` with its `Citation`s, `ShortAnswer` and
`Translation`s).

Frozen dataclasses with no behaviour beyond their JSON shapes (`to_dict`). They live here, below
every stage, so that a stage names them without importing the stage that makes them (the reader
makes `ShortAnswer`, the quote makes `Answer`, the stream carries both). Leaves out: the chunks and
documents of ingest (`qa.ingest`) and the retrieval results (`qa.retrieve`), which those stages own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from qa.config import Settings
    from qa.retrieve import Retrieval


@dataclass(frozen=True)
class Translation:
    """A cited sentence in `lang`: `text` is None when the translation failed its check (`note` says why)."""

    text: str | None
    lang: str
    verified: bool
    note: str | None = None

    def to_dict(self) -> dict:
        """The JSON shape on a citation of `qa ask --json --translate`."""
        return {"text": self.text, "lang": self.lang, "verified": self.verified}


@dataclass(frozen=True)
class ShortAnswer:
    """A short answer: `text` in `lang`, from the exact span `quote == document[start:end]` of citation `n`.

    `verified`: `text` is the span itself or a rendering that passed `qa.verify.check_rendering`;
    False means `text` is the span (in the document's language) because the rendering failed.
    """

    text: str
    lang: str
    verified: bool
    n: int
    doc: str
    start: int
    end: int
    quote: str

    def to_dict(self) -> dict:
        """The JSON shape of `qa ask --json`'s `short_answer`."""
        source = {"n": self.n, "doc": self.doc, "start": self.start, "end": self.end, "quote": self.quote}
        return {"text": self.text, "lang": self.lang, "verified": self.verified, "source": source}


@dataclass(frozen=True)
class Citation:
    """One cited sentence: `quote == text of doc[start:end]`, inside chunk `chunk_id`."""

    n: int
    doc: str
    chunk_id: str
    start: int
    end: int
    quote: str
    paragraph: int
    score: float
    passage: str  # the whole chunk the sentence sits in, for context
    passage_start: int  # offset of `passage` in the document
    page: int | None = None  # 1-based page of a PDF, None for other documents
    translation: Translation | None = None  # qa.translate, on request


@dataclass(frozen=True)
class Answer:
    """A finished answer: text with `[n]` markers, its citations, and how it was made.

    `timings_ms` is built once by the stage that finishes the answer (qa.chain) and never mutated:
    keys such as "embed", "retrieve", "llm", "answer", "total", in milliseconds.
    """

    question: str
    question_lang: str
    answer: str
    mode: str
    abstained: bool
    citations: tuple[Citation, ...]
    timings_ms: dict = field(default_factory=dict)
    closest: tuple[Citation, ...] = ()  # best evidence when abstaining: shown apart, not cited
    answer_lang: str = "en"
    note: str | None = None  # e.g. why a generated answer fell back to extractive
    short_answer: ShortAnswer | None = None  # qa.reader: the checked answer words, in the question's language
    # How sure the reader's model was (qa.reader.ReaderSignals.to_dict()); empty when no reader ran.
    signals: dict = field(default_factory=dict)
    # The language-model calls of this answer cut at the time cap (`Settings.llm_timeout_s`):
    # "reader", "reader_retry" (the second rendering), "llm" (the generative mode).
    timeouts: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        """The JSON shape of `qa ask --json`."""
        cite = ("n", "doc", "chunk_id", "start", "end", "quote", "paragraph", "page", "score")

        def citation(c: Citation) -> dict:
            row = {k: getattr(c, k) for k in cite}
            if c.translation is not None:
                row["translation"] = c.translation.to_dict()
            return row

        return {
            "question": self.question,
            "question_lang": self.question_lang,
            "answer": self.answer,
            "answer_lang": self.answer_lang,
            "mode": self.mode,
            "abstained": self.abstained,
            "note": self.note,
            "short_answer": self.short_answer.to_dict() if self.short_answer else None,
            "citations": [citation(c) for c in self.citations],
            "closest": [citation(c) for c in self.closest],
            "timings_ms": {k: round(v, 1) for k, v in self.timings_ms.items()},
            "signals": dict(self.signals),
            "timeouts": list(self.timeouts),
        }


@dataclass(frozen=True)
class Request:
    """One question as the pipeline sees it: checked text, options, and the settings in force.

    `history` is the earlier turns as (question, answer text) pairs, oldest first; `retrieval`, when
    given (evaluation), is used instead of retrieving again.
    """

    question: str
    mode: str
    settings: Settings
    k: int | None = None
    history: tuple[tuple[str, str], ...] = ()
    retrieval: Retrieval | None = field(default=None, compare=False)


@dataclass(frozen=True)
class Delta:
    """A piece of draft text, in order; not yet verified."""

    text: str


@dataclass(frozen=True)
class Draft:
    """An answer that may be shown now; a later `Draft` or the final `Answer` replaces it."""

    answer: Answer


Event = Delta | Draft
