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
   ("Kyle Orton" for «كايل أورتون»), each of its words has an embedding within `NAME_THRESHOLD`
   of some word of the cited evidence. No transliteration table: the embedder places a name and
   its Arabic spelling fairly close, and the threshold is measured (`bench/bench_llm.py
   --calibrate`); names typed by the user in the question always pass.
A sentence without its own marker is checked against the markers of the next sentence that has
some (models often cite once per pair of sentences), else the previous one.
Leaves out: contradictions (a sentence that reverses its evidence can still be similar to it) and
names written in Arabic script inside an Arabic answer, which have no capital letters to find.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from qa import text as qtext

# Calibrated on the seed article with EmbeddingGemma (`bench/bench_llm.py --calibrate`): the answer
# sentence embedded as a query, the evidence as documents. Hand-written faithful answers (12 en, 12
# ar) reach 0.41-0.79 against their sentence; against the article's other sentences (same topic,
# hard negatives) p95 0.49, max 0.64. At 0.5: 9/12 en and 10/12 ar faithful pass, 3.7% of
# mismatched pairs pass. A rejected answer only means the quoted (extractive) answer is shown.
SUPPORT_THRESHOLD = 0.5
# Word-level cosine of an English name against the cited Arabic sentence: the 16 seed names score
# 0.57-0.94 against their sentence (13/16 at or above 0.65); 16 names the article never mentions
# score p50 0.58, p95 0.68 against single sentences (13.6% at or above 0.65). A weak signal: the
# sentence similarity check runs as well.
NAME_THRESHOLD = 0.75
SKELETON_THRESHOLD = 0.8

# Rendering check: which prompt embeds each side (rendering, source), and the threshold. PROVISIONAL.
RENDERING_PROMPTS = ("query", "query")
RENDERING_THRESHOLD = 0.46
NAME_RENDERING_THRESHOLD = 0.67
NAME_SHORTLIST = 5

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
class RenderingCheck:
    """Whether a rendering (a translation of a span or sentence) may be shown, and why not."""

    ok: bool
    similarity: float  # cosine of rendering and source, the calibrated signal
    missing_numbers: tuple[str, ...]  # numbers in one but not the other
    reason: str | None  # one sentence, None when ok


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

    Example: numbers("في ٢٠١٦ و 1,500 و ١٫٥") == {"2016", "1500", "1.5"}
    """
    found = _NUMBER.findall(qtext.normalize(text))
    return {re.sub(r"[,٬]", "", n).replace("٫", ".").rstrip(".") for n in found}


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


class _TextVectors:
    """An LRU of text vectors per (embedder, prompt): renderings, evidence and its spans recur."""

    def __init__(self, size: int = 8192) -> None:
        self.size = size
        self.data: OrderedDict[tuple[str, str, str], np.ndarray] = OrderedDict()
        self.lock = threading.Lock()

    def get(self, embedder, prompt: str, texts: list[str]) -> np.ndarray:
        """One row per text, embedded with the `query` or `document` prompt (documents in one batch)."""
        name = getattr(embedder, "name", "")
        with self.lock:
            found = {t: self.data[name, prompt, t] for t in texts if (name, prompt, t) in self.data}
            for t in found:
                self.data.move_to_end((name, prompt, t))
        todo = [t for t in dict.fromkeys(texts) if t not in found]
        if todo:  # encoded outside the lock: the embedder has its own
            if prompt == "query":
                new = [embedder.encode_query(t) for t in todo]
            else:
                new = list(embedder.encode_documents(todo))
            found.update(zip(todo, new))
            with self.lock:
                for t, v in zip(todo, new):
                    self.data[name, prompt, t] = v
                while len(self.data) > self.size:
                    self.data.popitem(last=False)
        return np.stack([found[t] for t in texts])


_TEXT_VECTORS = _TextVectors()


def rendering_similarity(rendering: str, source: str, *, embedder) -> float:
    """Cosine between a rendering and its source, embedded as `RENDERING_PROMPTS` says (cached)."""
    return float(similarities([rendering], [source], embedder=embedder)[0, 0])


def similarities(renderings: list[str], sources: list[str], *, embedder) -> np.ndarray:
    """Cosines of every rendering (rows) against every source (columns), with `RENDERING_PROMPTS`."""
    rendering_prompt, source_prompt = RENDERING_PROMPTS
    return _TEXT_VECTORS.get(embedder, rendering_prompt, renderings) @ (
        _TEXT_VECTORS.get(embedder, source_prompt, sources).T
    )


def check_rendering(rendering: str, source: str, *, embedder, threshold: float | None = None) -> RenderingCheck:
    """Whether `rendering` (e.g. English) may be shown as a rendering of `source` (e.g. an Arabic span).

    Numbers must agree exactly: the numbers written with digits (any script) in both are the same
    set, so a rendering may not add, drop or change one, and a number spelled in words on one side
    only ("three" for «3», "3" for «ثلاثة») is a mismatch too: renderings copy digits as digits.
    Then the meaning: `rendering_similarity` must reach `threshold` (default `RENDERING_THRESHOLD`).

    Example: check_rendering("In 2015", "في عام 2016", embedder=e).missing_numbers == ("2015", "2016")
    """
    if not rendering.strip() or not source.strip():
        return RenderingCheck(False, 0.0, (), "the rendering or its source is empty")
    ours, theirs = numbers(rendering), numbers(source)
    similarity = round(rendering_similarity(rendering, source, embedder=embedder), 4)
    threshold = RENDERING_THRESHOLD if threshold is None else threshold
    reason = None
    if added := sorted(ours - theirs):
        reason = f"the number {added[0]} is not in the source"
    elif dropped := sorted(theirs - ours):
        reason = f"the source's number {dropped[0]} is missing from the rendering"
    elif similarity < threshold:
        reason = f"the rendering is not close enough to its source (similarity {similarity:.2f} < {threshold:.2f})"
    return RenderingCheck(reason is None, similarity, tuple(sorted(ours ^ theirs)), reason)


def content_words(text: str) -> list[str]:
    """The distinct words of a text that could be (part of) a name: not stopwords, not markers."""
    words = re.findall(r"[^\W\d_][\w’'-]*", text)
    return list(dict.fromkeys(w for w in words if qtext.normalize(w) not in qtext.STOPWORDS and len(w) > 1))


# Consonant classes shared by Latin and Arabic spellings of a name (vowels, w, y, alef, waw, ya dropped).
_LATIN_CLASSES = [
    ("sh", "S"), ("ch", "S"), ("kh", "K"), ("gh", "K"), ("th", "T"), ("dh", "D"), ("ph", "F"), ("ck", "K"),
    ("b", "B"), ("p", "B"), ("t", "T"), ("d", "D"), ("j", "K"), ("g", "K"), ("k", "K"), ("c", "K"),
    ("q", "K"), ("x", "KS"), ("s", "S"), ("z", "S"), ("f", "F"), ("v", "F"), ("l", "L"), ("m", "M"),
    ("n", "N"), ("r", "R"), ("h", "H"),
]  # fmt: skip
_ARABIC_CLASSES = str.maketrans(
    {**dict.fromkeys("بپ", "B"), **dict.fromkeys("تطث", "T"), **dict.fromkeys("دضذظ", "D"),
     **dict.fromkeys("جكقغگخ", "K"), **dict.fromkeys("سصشز", "S"), **dict.fromkeys("فڤ", "F"),
     "ل": "L", "م": "M", "ن": "N", "ر": "R", **dict.fromkeys("هح", "H")}
)  # fmt: skip


def skeleton(word: str) -> str:
    """The consonant skeleton of a Latin or Arabic word, for matching names across scripts.

    Example: skeleton("Peskov") == skeleton("بسكوف") == "BSKF"
    """
    word = qtext.normalize(word.replace("ة", ""))
    if re.match(r"[a-z]", word):
        word = re.sub(r"^(?:al|el)-", "", word)
        out, i = "", 0
        while i < len(word):
            for latin, cls in _LATIN_CLASSES:
                if word.startswith(latin, i):
                    out += cls
                    i += len(latin)
                    break
            else:
                i += 1  # vowels, w, y, hyphens
        return re.sub(r"(.)\1+", r"\1", out)
    word = re.sub(r"^(?:وال|بال|لل|ال)", "", word)
    out = re.sub(r"[^A-Z]", "", word.translate(_ARABIC_CLASSES))
    return re.sub(r"(.)\1+", r"\1", out)


def _lcs(a: str, b: str) -> int:
    row = [0] * (len(b) + 1)
    for ca in a:
        prev = 0
        for j, cb in enumerate(b, start=1):
            prev, row[j] = row[j], prev + 1 if ca == cb else max(row[j], row[j - 1])
    return row[-1]


def skeleton_match(word: str, candidates: list[str]) -> float:
    """The best skeleton agreement (longest common subsequence / longer length) with any candidate."""
    a = skeleton(word)
    if len(a) < 2:
        return 0.0
    scores = [_lcs(a, b) / max(len(a), len(b)) for b in map(skeleton, candidates) if len(b) >= 2]
    return max(scores, default=0.0)


_SPAN_WORD = re.compile(r"[^\W_]+(?:[-.'’][^\W_]+)*")


def evidence_spans(text: str, sizes: range) -> list[str]:
    """Runs of `sizes` consecutive words of `text` (exact slices), not starting or ending with a
    stopword: the candidates a name may be a rendering of.

    Example: evidence_spans("في منطقة الشرق الأوسط", range(2, 3)) == ["منطقة الشرق", "الشرق الأوسط"]
    """
    words = [(m.start(), m.end(), qtext.normalize(m.group())) for m in _SPAN_WORD.finditer(text)]
    out = []
    for n in sizes:
        for i in range(len(words) - n + 1):
            first, last = words[i], words[i + n - 1]
            if first[2] not in qtext.STOPWORDS and last[2] not in qtext.STOPWORDS:
                out.append(text[first[0] : last[1]])
    return list(dict.fromkeys(out))


def name_support(
    name: str, evidence: list[str], *, question: str = "", embedder, threshold: float | None = None
) -> str | None:
    """How the evidence (or the question) supports a name of the answer, or None if it does not.

    "verbatim": its words are there, after normalisation; "transliterated": every word has a
    counterpart with the same consonant skeleton ("Dmitry Peskov"/«دميتري بسكوف»); else
    "rendering of «span»": the name passes `check_rendering` at `threshold` (default
    `NAME_RENDERING_THRESHOLD`) against one of the `NAME_SHORTLIST` spans of the evidence, of about
    as many words, closest to it by their document vectors (one batch: cheap), as "Middle
    East"/«الشرق الأوسط» and "Jordan"/«الأردن» do.
    """
    if _name_in(name, _words(" ".join(evidence)) | _words(question)):
        return "verbatim"
    parts = content_words(name) or [name]
    candidates = content_words(" ".join([*evidence, question]))
    if all(skeleton_match(word, candidates) >= SKELETON_THRESHOLD for word in parts):
        return "transliterated"
    k = len(parts)
    spans = list(dict.fromkeys(sp for e in evidence for sp in evidence_spans(e, range(max(1, k - 1), k + 2))))
    if not spans:
        return None
    near = _TEXT_VECTORS.get(embedder, "document", [name]) @ _TEXT_VECTORS.get(embedder, "document", spans).T
    threshold = NAME_RENDERING_THRESHOLD if threshold is None else threshold
    for i in np.argsort(-near[0], kind="stable")[:NAME_SHORTLIST]:
        if check_rendering(name, spans[i], embedder=embedder, threshold=threshold).ok:
            return f"rendering of «{spans[i]}»"
    return None


def name_supported(name: str, evidence: list[str], *, embedder) -> bool:
    """True when `name_support` finds the name in the evidence (word for word, transliterated or rendered)."""
    return name_support(name, evidence, embedder=embedder) is not None


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
    # Each answer sentence against the evidence it cites, embedded like renderings (cached).
    sims = similarities([body for body, _ in sentences], list(evidence), embedder=embedder)
    checks = []
    for (body, cites), row in zip(sentences, sims):
        support = [evidence[n - 1] for n in cites]
        similarity = max((float(row[n - 1]) for n in cites), default=0.0)
        allowed_numbers = numbers(" ".join(support)) | numbers(question)
        missing_numbers = tuple(sorted(numbers(body) - allowed_numbers))
        missing_names = tuple(
            name for name in names(body) if name_support(name, support, question=question, embedder=embedder) is None
        )
        checks.append(SentenceCheck(body, cites, round(similarity, 4), missing_numbers, missing_names))
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
