"""The plain types every stage passes on, in pipeline order: a document and its chunks (`Document`,
`Chunk`, and for a scan its recognised words, `OcrPage`, `OcrWord`), what retrieval found (`Hit`, `Evidence` with the `Item`s it announces, `Retrieval`), a question (`Request`), the
events of its answer (`Delta`, `Draft`), and the answer itself (`Answer` with its `Citation`s,
`ShortAnswer` and `Translation`s).

Frozen dataclasses with no behaviour beyond small pure helpers and their JSON shapes (`to_dict`).
They live here, below every stage, so that a stage names them without importing the stage that
makes them (ingest makes `Chunk`, the reader `ShortAnswer`, the quote `Answer`, the stream carries
both); the stages re-export the ones they make (`qa.ingest.Chunk`, `qa.retrieve.Retrieval`).
Imports nothing of `qa` but the settings' type. Leaves out: the stages' working types that no other
stage passes on (`qa.ingest.IngestReport`, `qa.records.DocInfo`).
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

from qa.config import Settings


@dataclass(frozen=True)
class OcrWord:
    """A word the recogniser read (qa.ocr): `[start, end)` character offsets in the document's text,
    its `box` `(left, top, right, bottom)` in the pixels of its page image, and the recogniser's
    `confidence` in it, in [0, 1]."""

    start: int
    end: int
    box: tuple[int, int, int, int]
    confidence: float


@dataclass(frozen=True)
class OcrPage:
    """A page read by OCR: its 1-based `page` number, the `image` it was read from (a stored PNG's
    path), that image's size in pixels, and its words in reading order (offsets in the document)."""

    page: int
    image: str
    width: int
    height: int
    words: tuple[OcrWord, ...]

    def shifted(self, offset: int) -> OcrPage:
        """The same page with every word's offsets moved by `offset` characters (page → document)."""
        words = tuple(OcrWord(w.start + offset, w.end + offset, w.box, w.confidence) for w in self.words)
        return OcrPage(self.page, self.image, self.width, self.height, words)


@dataclass(frozen=True)
class Document:
    """A document's extracted text and identity with a hash of that text.

    `id` is the file name unless another indexed file has that name (then the shortest distinct
    tail of its path, e.g. "b/report.txt"; the assistant decides, see qa.assistant). `source` is the
    file's resolved path. `page_starts[i]` is the offset in `text` where page i + 1 begins (PDFs
    only; empty for other formats). `ocr`: the pages whose text was recognised from an image (a
    scan, a photo, a PDF page without a usable text layer), with their words' boxes; empty otherwise.
    """

    id: str
    text: str
    sha256: str
    source: str
    page_starts: tuple[int, ...] = ()
    ocr: tuple[OcrPage, ...] = field(default=(), compare=False, repr=False)
    # The `[start, end)` spans of `text` that are list items and table rows (qa.ingest, for HTML and
    # .docx): each is kept as one sentence of its own, whatever punctuation it holds.
    units: tuple[tuple[int, int], ...] = field(default=(), compare=False, repr=False)

    def page_at(self, offset: int) -> int | None:
        """The 1-based page of a character offset, or None for a document without pages."""
        if not self.page_starts:
            return None
        return max(1, bisect.bisect_right(self.page_starts, offset))


@dataclass(frozen=True)
class Chunk:
    """A passage of a document: its exact text, offsets, paragraph, sentence spans and page."""

    id: str
    doc_id: str
    index: int
    paragraph: int
    start: int
    end: int
    text: str
    sentences: tuple[tuple[int, int], ...]  # absolute [start, end) offsets in the document
    page: int | None = None  # 1-based page of its start, for PDFs (a scan's chunk may run on to the next)
    doc_sha: str = ""  # the document version this chunk belongs to
    # Those of `sentences` that are list items or table rows (`Document.units`): an enumeration's
    # items, which join the sentence that announces them (qa.retrieve).
    units: tuple[tuple[int, int], ...] = ()

    def text_of(self, start: int, end: int) -> str:
        """The text at document offsets `[start, end)`, which lie inside this chunk (a sentence)."""
        return self.text[start - self.start : end - self.start]


@dataclass(frozen=True)
class Hit:
    """A retrieved chunk: `score` orders hits; `dense` is the absolute similarity it came from."""

    chunk: Chunk
    score: float  # fused, relative to the other candidates of this question
    dense: float  # mix of chunk and best-sentence cosine similarity (main embedder)
    sentence: float  # best sentence cosine similarity (main embedder)
    lexical: float  # raw BM25, qa.lexical's Lucene form (0 for questions not in Arabic)
    second: float | None = None  # `dense` under the second embedder (None: not used for this question)


# The raw signals qa.retrieve records for each evidence sentence (`Evidence.features`), in order;
# the learned citation rank (qa.citerank) and the abstention score (qa.confidence) read them.
EVIDENCE_SIGNALS = (
    "sim",  # cosine similarity to the question, main embedder
    "sim2",  # the same, second embedder (the main one's when there is none)
    "overlap",  # share of the question's words in the sentence
    "overlap_idf",  # the same, each word weighted by its idf over the evidence sentences
    "misfit",  # 1 when the question asks a number or a time and the sentence holds none
    "chunk",  # its passage's dense score (main embedder)
    "chunk_rank",  # its passage's place among the retrieved ones, 0 = first
    "first",  # 1 when it is its passage's first sentence
    "neighbour",  # the better cosine similarity of the sentences before and after it in its passage
    "neighbour_overlap",  # the better idf-weighted overlap of those two (the subject named next door)
    "length",  # log(1 + its words)
)


@dataclass(frozen=True)
class Evidence:
    """A sentence inside a retrieved chunk, scored as support for the question."""

    doc_id: str
    chunk_id: str
    paragraph: int
    start: int
    end: int
    text: str
    score: float
    similarity: float
    overlap: float
    page: int | None = None  # 1-based page of a PDF
    # The citation ranking score (qa.retrieve: `score` plus the second embedder's similarity and the
    # sentence's context); None: rank by `score`. `score` alone is what abstention compares (calibrated).
    rank: float | None = None
    # The list items or table rows that follow this sentence when it announces them (qa.retrieve),
    # in document order: `Item`s with exact offsets in the same document.
    items: tuple[Item, ...] = ()
    # The raw signals `EVIDENCE_SIGNALS` names, in that order, kept so an evaluation can refit the
    # citation rank (bench/fit_citerank.py) and the abstention score; () when retrieval did not record them.
    features: tuple[float, ...] = ()

    @property
    def cite_score(self) -> float:
        """The score citations are ranked by: `rank`, or `score` when there is none."""
        return self.score if self.rank is None else self.rank


@dataclass(frozen=True)
class Item:
    """A list item or table row cited under the sentence that announces it: `text == document[start:end]`."""

    start: int
    end: int
    text: str

    def to_dict(self) -> dict:
        """The JSON shape on a citation of `qa ask --json` (`items`)."""
        return {"start": self.start, "end": self.end, "quote": self.text}


@dataclass(frozen=True)
class Retrieval:
    """Everything retrieval found for one question."""

    question: str
    language: str
    hits: tuple[Hit, ...]
    evidence: tuple[Evidence, ...]
    timings_ms: dict
    # For a follow-up: the best evidence of the other reading (the question alone, or joined to the
    # previous one), for the reader to choose between (qa.reading.evidence_for).
    alternatives: tuple[Evidence, ...] = ()
    # The idf-weighted share of the question's words found in the best evidence's chunk
    # (qa.lexical.query_coverage), in [0, 1]; None unless both are Arabic (words of two languages
    # never match).
    coverage: float | None = None
    # How close to the best a runner-up's `Evidence.rank` must be to be cited too, when the rank is
    # the learned one (qa.citerank: log-odds, `Settings.cite_logit_margin`); None: the hand-weighted
    # rank's `Settings.evidence_margin`.
    cite_margin: float | None = None


@dataclass(frozen=True)
class WordGloss:
    """One word of an Arabic text glossed from witnesses (qa.gloss), never from a model.

    `[start, end)`: the word's offsets in the document (or in the text glossed); `kind`: "content",
    "function", "negation", "name", "number" or "latin" (a Latin-script word kept as written);
    `glosses`: its English glosses, commonest first (empty when no dictionary knows it); `latin`:
    a name's likeliest Latin spelling (names only); `witness`: what gave the glosses: "dictionary",
    "lemma", "reverse", "name", "number", "verbatim", or None.
    """

    start: int
    end: int
    word: str
    kind: str
    glosses: tuple[str, ...]
    latin: str | None
    witness: str | None

    @property
    def covered(self) -> bool:
        """True when the word has a gloss or a Latin name."""
        return bool(self.glosses) or bool(self.latin)

    def to_dict(self) -> dict:
        """The JSON shape of one word of a gloss (`qa ask --json`'s `gloss`)."""
        return {
            "start": self.start,
            "end": self.end,
            "word": self.word,
            "kind": self.kind,
            "glosses": list(self.glosses),
            "latin": self.latin,
            "witness": self.witness,
        }

    @classmethod
    def from_dict(cls, d: dict) -> WordGloss:
        """The word `to_dict` gave (a saved conversation's citation)."""
        return cls(d["start"], d["end"], d["word"], d["kind"], tuple(d["glosses"]), d["latin"], d["witness"])


@dataclass(frozen=True)
class WordSupport:
    """One word of an English rendering and what supports it in the Arabic source (qa.wordcheck).

    `[start, end)`: offsets in the rendering; `kind`: "content", "name", "number", "function" or
    "negation"; `support`: the `[start, end)` document offsets of the Arabic word(s) it renders;
    `witness`: "dictionary", "reverse", "lemma", "name", "number", "verbatim", "alignment"
    (the weak witness: contextual vectors, qa.align), or None (unsupported, or a function word
    that needs none); `similarity`: for an ordinary content word no dictionary supports, the
    cosine of its most similar Arabic content word (qa.align), else None.
    """

    start: int
    end: int
    text: str
    kind: str
    support: tuple[tuple[int, int], ...]
    witness: str | None
    similarity: float | None = None

    @property
    def supported(self) -> bool:
        """True when some Arabic word supports it."""
        return bool(self.support)

    def to_dict(self) -> dict:
        """The JSON shape of one English word's support."""
        return {
            "start": self.start,
            "end": self.end,
            "text": self.text,
            "kind": self.kind,
            "support": [list(s) for s in self.support],
            "witness": self.witness,
            "similarity": self.similarity,
        }

    @classmethod
    def from_dict(cls, d: dict) -> WordSupport:
        """The word `to_dict` gave."""
        support = tuple((a, b) for a, b in d["support"])
        return cls(d["start"], d["end"], d["text"], d["kind"], support, d["witness"], d.get("similarity"))


@dataclass(frozen=True)
class WordCheck:
    """An English rendering checked word by word against its Arabic source (qa.wordcheck):
    `ok`, the `reason` it failed (one sentence), each English word's support, the Arabic content
    words no English word renders (`left_out`), and the `share` of English content words supported
    (None when it has none)."""

    ok: bool
    reason: str | None
    words: tuple[WordSupport, ...]
    left_out: tuple[WordGloss, ...]
    share: float | None
    # The share of the source's content words some English word renders (None: the source has none).
    source_share: float | None = None

    def shifted(self, offset: int) -> WordCheck:
        """The same check with every Arabic offset moved by `offset` (sentence → document)."""
        words = tuple(
            WordSupport(
                w.start,
                w.end,
                w.text,
                w.kind,
                tuple((a + offset, b + offset) for a, b in w.support),
                w.witness,
                w.similarity,
            )
            for w in self.words
        )
        left = tuple(
            WordGloss(g.start + offset, g.end + offset, g.word, g.kind, g.glosses, g.latin, g.witness)
            for g in self.left_out
        )
        return WordCheck(self.ok, self.reason, words, left, self.share, self.source_share)

    def to_dict(self) -> dict:
        """The JSON shape of `word_check` on a translation or a short answer."""
        return {
            "ok": self.ok,
            "reason": self.reason,
            "share": self.share,
            "source_share": self.source_share,
            "words": [w.to_dict() for w in self.words],
            "left_out": [g.to_dict() for g in self.left_out],
        }

    @classmethod
    def from_dict(cls, d: dict) -> WordCheck:
        """The check `to_dict` gave (a saved conversation's translation or short answer)."""
        words = tuple(WordSupport.from_dict(w) for w in d["words"])
        left = tuple(WordGloss.from_dict(g) for g in d["left_out"])
        return cls(d["ok"], d["reason"], words, left, d["share"], d.get("source_share"))


@dataclass(frozen=True)
class Translation:
    """A cited sentence in `lang`: `text` is None when the translation failed its check (`note` says why;
    on a checked English rendering of Arabic, the word check's measured record)."""

    text: str | None
    lang: str
    verified: bool
    note: str | None = None
    # The English rendering checked word by word (qa.wordcheck; offsets into the document once the
    # translation sits on a citation), and, when it failed, the refused rendering itself: shown
    # only word-marked, labelled "rough machine translation, not checked".
    check: WordCheck | None = None
    rough: str | None = None

    def to_dict(self) -> dict:
        """The JSON shape on a citation of `qa ask --json --translate`."""
        out = {"text": self.text, "lang": self.lang, "verified": self.verified}
        if self.note is not None:  # why it failed, or, checked, how sure the check is
            out["note"] = self.note
        if self.rough is not None:
            out["rough"] = self.rough
        if self.check is not None:
            out["word_check"] = self.check.to_dict()
        return out


@dataclass(frozen=True)
class ShortAnswer:
    """A short answer: `text` in `lang`, from the exact span `quote == document[start:end]` of citation `n`.

    `verified`: the reader's rules passed: `text` is the span itself or a rendering that passed
    `qa.verify.check_rendering`, and two readings agree; False means `text` is the span (in the
    document's language) because a rule failed. `checked`: verified, and its calibrated score
    `confidence` (P(right) by qa.confidence) clears the bar certified for its language, whose promise
    `guarantee` states ("fewer than 5 in 100 such answers are wrong …"); `why_not` says in one
    sentence why a verified answer is not checked (no calibration for this model, no bar certified
    for the language, or a score below the bar).
    """

    text: str
    lang: str
    verified: bool
    n: int
    doc: str
    start: int
    end: int
    quote: str
    checked: bool = False
    confidence: float | None = None
    guarantee: str | None = None
    why_not: str | None = None
    # An English wording of an Arabic span checked word by word (qa.wordcheck; document offsets).
    check: WordCheck | None = None

    def status(self, note: str | None = None) -> str:
        """What the label says, for the CLI, the API's reply text and exports: "checked: <guarantee>",
        "not checked: <why_not>", or, when a rule failed, "not checked: <note>" (the answer's note).
        A short answer whose English wording was refused can still be checked: what is checked is
        then its words as the document has them (`quote`), which is what is shown."""
        if self.checked:
            return f"checked: {self.guarantee}"
        if self.verified:
            return f"not checked: {self.why_not}"
        return f"not checked: {note or 'the cited words as written'}"

    def to_dict(self) -> dict:
        """The JSON shape of `qa ask --json`'s `short_answer`."""
        source = {"n": self.n, "doc": self.doc, "start": self.start, "end": self.end, "quote": self.quote}
        out = {
            "text": self.text,
            "lang": self.lang,
            "verified": self.verified,
            "checked": self.checked,
            "confidence": None if self.confidence is None else round(self.confidence, 4),
            "guarantee": self.guarantee,
            "why_not": self.why_not,
            "source": source,
        }
        if self.check is not None:
            out["word_check"] = self.check.to_dict()
        return out


@dataclass(frozen=True)
class Recognition:
    """How a cited sentence was read from a scan (qa.ocr): the page image it is on (a PNG's path and
    its size in pixels), the boxes `(left, top, right, bottom)` of its words in those pixels, and
    the recogniser's per-word confidence in [0, 1]: the mean, and the least sure word."""

    page: int
    image: str
    width: int
    height: int
    boxes: tuple[tuple[int, int, int, int], ...]
    confidence: float
    lowest: float
    lowest_word: str

    def to_dict(self) -> dict:
        """The JSON shape on a citation of `qa ask --json` (the image's path left out)."""
        return {
            "page": self.page,
            "boxes": [list(b) for b in self.boxes],
            "confidence": round(self.confidence, 3),
            "lowest": round(self.lowest, 3),
            "lowest_word": self.lowest_word,
        }


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
    recognition: Recognition | None = None  # qa.ocr: the sentence was read from a scanned page
    # The list items or table rows the sentence announces, quoted under it (`Evidence.items`).
    items: tuple[Item, ...] = ()
    # For an English reader of an Arabic sentence: the sentence word by word (qa.gloss, document offsets).
    gloss: tuple[WordGloss, ...] = ()


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
    # How sure the reader's model was (qa.reading.ReaderSignals.to_dict()); empty when no reader ran.
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
            if c.recognition is not None:
                row["ocr"] = c.recognition.to_dict()
            if c.items:
                row["items"] = [item.to_dict() for item in c.items]
            if c.gloss:
                row["gloss"] = [g.to_dict() for g in c.gloss]
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
