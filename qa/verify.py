"""Verify a generated answer against the evidence sentences it cites, before anyone sees it.

Four checks, all of which must pass:
1. the answer cites something, and every `[n]` refers to one of the numbered evidence sentences;
2. each answer sentence is close in meaning to the sentences it cites: the best cosine similarity
   (the assistant's multilingual embedder, so an English sentence can be checked against Arabic
   evidence) must reach `SUPPORT_THRESHOLD`, calibrated on faithful and mismatched pairs;
3. every number in an answer sentence (digits, with Arabic-Indic digits normalised) appears in its
   cited evidence or in the question;
4. every name (a run of capitalised Latin words) appears in its cited evidence or in the question,
   word for word after normalisation, or, for names written in another script than the evidence
   ("Kyle Orton" for «كايل أورتون»), its embedding is within `NAME_THRESHOLD` of some span of one
   to three words of the cited evidence. No transliteration table: the embedder already places a
   name and its Arabic spelling close together, and the threshold is measured (see
   `bench/bench_llm.py` and the tests).
A sentence without its own marker is checked against the markers of the next sentence that has
some (models often cite once per pair of sentences), else the previous one.
Leaves out: contradictions (a sentence that reverses its evidence can still be similar to it) and
names written in Arabic script inside an Arabic answer, which have no capital letters to find.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from qa import text as qtext

# Calibrated on the seed article with EmbeddingGemma (bench/bench_llm.py --calibrate): faithful
# sentence/evidence pairs, English and Arabic, score 0.63-0.93; the same sentences against the
# article's other sentences score 0.31-0.62.
SUPPORT_THRESHOLD = 0.6
# English names against Arabic spans of the seed: true spellings 0.7-0.9, best span for a name the
# article does not contain below 0.68.
NAME_THRESHOLD = 0.7
MAX_SPAN_WORDS = 3

_MARKER = re.compile(r"\[\s*(\d+(?:\s*[,،]\s*\d+)*)\s*\]")
_AFTER_STOP = re.compile(rf"([.!?؟])\s*((?:{_MARKER.pattern}\s*)+)")
_NUMBER = re.compile(r"\d+(?:[.,٫]\d+)*")
# A name: capitalised Latin words joined by spaces or hyphens ("Russia-Now.com", "Henry Jackson Society").
_NAME = re.compile(r"[A-Z][\w'’.-]*[\w](?:[ -][A-Z][\w'’.-]*[\w]|[ -][A-Z])*")
# Capitalised only because they start a sentence or are common words, not names.
_NOT_NAMES = frozenset(
    """
    according also although answer because before after both but during each evidence however
    i if instead it its he her his she they their there these this those we you yes no not
    only our so then though thus while yet
    """.split()
)


@dataclass(frozen=True)
class SentenceCheck:
    """The verdict on one sentence of the answer."""

    sentence: str
    cites: tuple[int, ...]
    similarity: float
    missing_numbers: tuple[str, ...]
    missing_names: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return bool(self.cites) and not self.missing_numbers and not self.missing_names


@dataclass(frozen=True)
class Verdict:
    """Whether an answer may be shown, why not (one sentence), and the details per sentence."""

    ok: bool
    reason: str | None
    cited: tuple[int, ...]  # evidence numbers in order of first citation
    checks: tuple[SentenceCheck, ...]


def markers(text: str) -> list[tuple[int, int, tuple[int, ...]]]:
    """Every citation marker as (start, end, numbers); "[1, 3]" and "[1][3]" both work.

    Example: markers("Yes [2][1].") == [(4, 7, (2,)), (7, 10, (1,))]
    """
    return [
        (m.start(), m.end(), tuple(int(n) for n in re.split(r"\s*[,،]\s*", m.group(1))))
        for m in _MARKER.finditer(text)
    ]


def strip_markers(text: str) -> str:
    """The text without citation markers, spaces tidied."""
    return re.sub(r"\s+([.,;:!?؟،])", r"\1", re.sub(r"\s+", " ", _MARKER.sub(" ", text))).strip()


def renumber(text: str, mapping: dict[int, int]) -> str:
    """Rewrite markers through `mapping` (old -> new number), one bracket per number.

    Example: renumber("A [3]. B [1, 3].", {3: 1, 1: 2}) == "A [1]. B [2][1]."
    """
    return _MARKER.sub(
        lambda m: "".join(f"[{mapping[n]}]" for _, _, ns in markers(m.group()) for n in ns), text
    )


def numbers(text: str) -> set[str]:
    """Numbers written with digits (any script), thousands separators dropped.

    Example: numbers("في ٢٠١٦ و 1,500") == {"2016", "1500"}
    """
    return {re.sub(r"[,٬]", "", n).rstrip(".") for n in _NUMBER.findall(qtext.normalize(text))}


def names(text: str) -> list[str]:
    """Runs of capitalised Latin words, minus sentence-start function words.

    Example: names("According to Dmitry Peskov, the Kremlin denied it.") == ["Dmitry Peskov", "Kremlin"]
    """
    out = []
    for match in _NAME.finditer(text):
        words = match.group().split(" ")
        while words and words[0].casefold().strip(".") in (_NOT_NAMES | qtext.STOPWORDS):
            words.pop(0)
        if words:
            out.append(" ".join(words).rstrip("."))
    return out


def answer_sentences(text: str) -> list[tuple[str, tuple[int, ...]]]:
    """Split an answer into (sentence without markers, numbers it cites), inheriting markers."""
    # "… Syria.[1] Next" → "… Syria [1]. Next": markers after a full stop go before it.
    text = _AFTER_STOP.sub(lambda m: f" {m.group(2).strip()}{m.group(1)} ", text).strip()
    parts: list[tuple[str, tuple[int, ...]]] = []
    for span in qtext.sentences(text):
        raw = text[span.start : span.end]
        cites = tuple(n for _, _, ns in markers(raw) for n in ns)
        body = strip_markers(raw)
        if not re.search(r"\w", body):
            continue
        parts.append((body, cites))
    resolved = []
    for i, (body, cites) in enumerate(parts):
        if not cites:
            later = [c for _, c in parts[i + 1 :] if c]
            earlier = [c for _, c in parts[:i] if c]
            cites = later[0] if later else (earlier[-1] if earlier else ())
        resolved.append((body, tuple(dict.fromkeys(cites))))
    return resolved


class _SpanCache:
    """Vectors of evidence word spans, kept across answers (the same evidence recurs)."""

    def __init__(self, size: int = 64) -> None:
        self.size = size
        self.data: OrderedDict[tuple[str, str], tuple[list[str], np.ndarray]] = OrderedDict()

    def get(self, embedder, sentence: str) -> tuple[list[str], np.ndarray]:
        key = (getattr(embedder, "name", ""), sentence)
        if key not in self.data:
            words = re.findall(r"[\w’'-]+", sentence)
            spans = list(
                dict.fromkeys(
                    " ".join(words[i : i + k])
                    for k in range(1, MAX_SPAN_WORDS + 1)
                    for i in range(len(words) - k + 1)
                    if qtext.normalize(words[i]) not in qtext.STOPWORDS
                    and qtext.normalize(words[i + k - 1]) not in qtext.STOPWORDS
                )
            )
            self.data[key] = (spans, embedder.encode_documents(spans) if spans else np.zeros((0, 1)))
            while len(self.data) > self.size:
                self.data.popitem(last=False)
        self.data.move_to_end(key)
        return self.data[key]


_SPANS = _SpanCache()


def name_similarity(name: str, evidence: list[str], *, embedder) -> tuple[float, str]:
    """The best cosine between a name and any 1-3 word span of the evidence, and that span."""
    vector = embedder.encode_documents([name])[0]
    best, where = -1.0, ""
    for sentence in evidence:
        spans, vectors = _SPANS.get(embedder, sentence)
        if spans:
            sims = vectors @ vector
            i = int(np.argmax(sims))
            if sims[i] > best:
                best, where = float(sims[i]), spans[i]
    return best, where


def _words(text: str) -> set[str]:
    return set(re.findall(r"\w+", qtext.normalize(text)))


def _name_in(name: str, words: set[str]) -> bool:
    return all(w in words for w in re.findall(r"\w+", qtext.normalize(name)))


def verify(
    answer: str,
    evidence: list[str],
    *,
    question: str,
    embedder,
    support_threshold: float = SUPPORT_THRESHOLD,
    name_threshold: float = NAME_THRESHOLD,
) -> Verdict:
    """Check `answer` (with [n] markers) against `evidence` (sentence n is evidence[n-1])."""
    found = [n for _, _, ns in markers(answer) for n in ns]
    cited = tuple(dict.fromkeys(found))
    if not cited:
        return Verdict(False, "it cites none of the evidence", (), ())
    bad = [n for n in cited if not 1 <= n <= len(evidence)]
    if bad:
        return Verdict(
            False, f"it cites [{bad[0]}], but only {len(evidence)} sentences were given", cited, ()
        )
    sentences = answer_sentences(answer)
    if not sentences:
        return Verdict(False, "it has no sentence to check", cited, ())
    question_words = _words(question)
    vectors = embedder.encode_documents([s for s, _ in sentences] + list(evidence))
    answer_vecs, evidence_vecs = vectors[: len(sentences)], vectors[len(sentences) :]
    checks = []
    for (body, cites), vec in zip(sentences, answer_vecs):
        support = [evidence[n - 1] for n in cites]
        similarity = max((float(evidence_vecs[n - 1] @ vec) for n in cites), default=0.0)
        allowed_numbers = numbers(" ".join(support)) | numbers(question)
        missing_numbers = tuple(sorted(numbers(body) - allowed_numbers))
        support_words = _words(" ".join(support)) | question_words
        missing_names = []
        for name in names(body):
            if _name_in(name, support_words):
                continue
            score, _ = name_similarity(name, support, embedder=embedder)
            if score < name_threshold:
                missing_names.append(name)
        checks.append(SentenceCheck(body, cites, round(similarity, 4), missing_numbers, tuple(missing_names)))
    reason = None
    for check in checks:
        if not check.cites:
            reason = f"the sentence «{check.sentence}» cites nothing"
        elif check.missing_numbers:
            reason = f"the number {check.missing_numbers[0]} is not in the evidence it cites"
        elif check.missing_names:
            reason = f"the name «{check.missing_names[0]}» is not in the evidence it cites"
        elif check.similarity < support_threshold:
            reason = f"the sentence «{check.sentence}» is not close enough to the evidence it cites"
        if reason:
            break
    return Verdict(reason is None, reason, cited, tuple(checks))
