"""Text utilities: Arabic normalisation, presentation-form folding, tokens, sentences, paragraphs.

Everything here works on offsets into the original string and never alters it: normalisation is
used only to *match* text (BM25, lexical overlap, answer scoring), while citations always point at
exact spans of the source. Text written in Arabic presentation forms (contextual glyphs such as
ﻻ or ﷲ, emitted by some PDF and legacy tools) is folded with NFKC for matching and embedding;
`fold` keeps a map from the folded text back to the original, so spans found on the folded text
become exact spans of the stored one. Sentence splitting is our own (a handful of regular
expressions): the well-kept splitters (spaCy, NLTK's punkt, pysbd) either have no Arabic model or
pull a model download, and neither knows Arabic abbreviations such as د. or ص.ب. Over-long runs
without sentence punctuation are split at clause marks, then at word boundaries (`split_long`).
`text_direction` gives a text's direction from the script most of its words are written in.
Leaves out: morphology beyond light affix stripping, bidirectional reordering, and any model.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

# Harakat, Quranic marks, superscript alef, and tatweel: dropped for matching.
LANGUAGE_NAMES = {"en": "English", "ar": "Arabic"}  # the languages detect_language tells apart
_DIACRITICS = re.compile(r"[\u0610-\u061a\u064b-\u065f\u0670\u06d6-\u06ed\u0640]")
_CHAR_MAP = str.maketrans(
    {
        "أ": "ا",
        "إ": "ا",
        "آ": "ا",
        "ٱ": "ا",
        "ى": "ي",
        "ئ": "ي",
        "ؤ": "و",
        "ة": "ه",
        **{chr(0x0660 + i): str(i) for i in range(10)},  # Arabic-Indic digits
        **{chr(0x06F0 + i): str(i) for i in range(10)},  # Persian digits
    }
)
_WORD = re.compile(r"\w+", re.UNICODE)
_ARABIC_LETTER = re.compile(r"[\u0621-\u064a\u0671-\u06d3]")
_LATIN_LETTER = re.compile(r"[A-Za-z]")

# Light10-style affixes (Larkey et al.), longest first; applied to normalised tokens.
_PREFIXES = ("وال", "بال", "كال", "فال", "لل", "ال", "و")
_SUFFIXES = ("ها", "ان", "ات", "ون", "ين", "يه", "ه", "ي")

STOPWORDS = frozenset(
    """
    في من على الى الي عن مع ان او ما لا لم لن هو هي هم هذا هذه ذلك تلك التي الذي الذين كان كانت
    قد ثم بين كل بعد قبل حتي اذا اي غير عند منذ وقد وكان وهو وهي ولا فقط ايضا به بها له لها فيه
    فيها منه عليه اليه كما حيث لقد انه انها ماذا متي اين كيف لماذا هل كم مما ممن
    the a an of to in on at by for with from and or but is are was were be been being this that
    these those it its as into about over than then what which who whom whose when where why how
    did do does done has have had not no yes s
    """.split()
)


@dataclass(frozen=True)
class Span:
    """A [start, end) character range of the original text."""

    start: int
    end: int


# Arabic Presentation Forms-A (U+FB50–U+FDFF) and -B (U+FE70–U+FEFF): contextual glyphs, ligatures.
_PRESENTATION = re.compile(r"[\ufb50-\ufdff\ufe70-\ufefe]")


def _fold_char(char: str) -> str:
    """NFKC of one presentation-form character; the spacing marks of U+FE70–U+FE7F lose their space."""
    folded = unicodedata.normalize("NFKC", char)
    return folded.lstrip(" ") or folded if "\ufe70" <= char <= "\ufe7f" else folded


@dataclass(frozen=True)
class Folded:
    """A text with its Arabic presentation forms folded (NFKC), and where each character came from.

    `origin[i]` is the offset in the original text of folded character i (one extra entry at the
    end: the original's length). Without presentation forms `text` is the original and `origin` is
    the identity.
    """

    text: str
    origin: Sequence[int]

    def span(self, start: int, end: int) -> Span:
        """The original [start, end) span that folded [start, end) came from (whole ligatures)."""
        if end <= start:
            return Span(self.origin[start], self.origin[start])
        return Span(self.origin[start], self.origin[end - 1] + 1)


def fold(text: str) -> Folded:
    """Fold Arabic presentation forms (U+FB50–U+FDFF, U+FE70–U+FEFE) into ordinary letters, with offsets.

    Example: fold("ﻻ ﺷﻚ").text == "لا شك" and fold("ﻻ ﺷﻚ").span(3, 5) == Span(2, 4)
    """
    if not _PRESENTATION.search(text):
        return Folded(text, range(len(text) + 1))
    parts: list[str] = []
    origin: list[int] = []
    for i, char in enumerate(text):
        piece = _fold_char(char) if _PRESENTATION.match(char) else char
        parts.append(piece)
        origin.extend([i] * len(piece))
    origin.append(len(text))
    return Folded("".join(parts), tuple(origin))


def fold_text(text: str) -> str:
    """`fold(text).text` without building the offset map (for matching and embedding).

    Example: fold_text("ﺍﻟﺴﻼﻡ") == "السلام"
    """
    return _PRESENTATION.sub(lambda m: _fold_char(m.group()), text) if _PRESENTATION.search(text) else text


def normalize(text: str) -> str:
    """Normalise text for matching: presentation forms, diacritics, tatweel, alef/hamza, ى/ي, ة/ه, digits, case.

    Example: normalize("الإرهابيّين ٣") == "الارهابيين 3"
    """
    return _DIACRITICS.sub("", fold_text(text)).translate(_CHAR_MAP).casefold()


# Cached: words repeat (Zipf), and stemming was about a third of a warm retrieval before (issue 11 profile).
@functools.lru_cache(maxsize=1 << 17)
def stem(token: str) -> str:
    """Strip one Light10 prefix and then suffixes from a normalised Arabic token, keeping 3 letters.

    Example: stem("والارهابيين") == "ارهاب"
    """
    if not _ARABIC_LETTER.match(token):
        return token
    for prefix in _PREFIXES:
        if token.startswith(prefix) and len(token) - len(prefix) >= 2:
            token = token[len(prefix) :]
            break
    for suffix in _SUFFIXES:
        if token.endswith(suffix) and len(token) - len(suffix) >= 3:
            token = token[: -len(suffix)]
    return token


def tokens(text: str, *, keep_stopwords: bool = False) -> list[str]:
    """Normalised, stemmed word tokens used by BM25 and lexical overlap.

    Example: tokens("نفى الكرملين الخبر") == ["نفي", "كرمل", "خبر"]
    """
    out = []
    for word in _WORD.findall(normalize(text)):
        if not keep_stopwords and word in STOPWORDS:
            continue
        out.append(stem(word))
    return out


def detect_language(text: str) -> str:
    """Return "ar" when Arabic letters outnumber Latin ones, else "en".

    Example: detect_language("ماذا نفى الكرملين؟") == "ar"
    """
    arabic = len(_ARABIC_LETTER.findall(text))
    latin = len(_LATIN_LETTER.findall(text))
    return "ar" if arabic > latin else "en"


# Share of words written right-to-left above which a text runs right-to-left: the estimate of Google
# Closure's bidi.estimateDirection (also used by Google's products), which counts words, not letters,
# so a long Latin name or URL at the start of an Arabic question does not outweigh it.
RTL_WORD_SHARE = 0.4


def text_direction(text: str) -> str:
    """ "rtl" or "ltr": the direction of the script most of the text's words are written in.

    A word counts by its first strong letter (bidi class L, or R/AL for Arabic and Hebrew); words
    without one (numbers, punctuation) do not count. The text is "rtl" when more than
    `RTL_WORD_SHARE` of the counted words are right-to-left, so an Arabic sentence that starts with a
    Latin name stays right-to-left, where HTML's dir="auto" (first strong letter) makes it
    left-to-right. Empty or letterless text is "ltr".

    Example: text_direction("Russia-Now.com: ماذا نفى الموقع؟") == "rtl"
    """
    rtl = ltr = 0
    for word in text.split():
        for char in word:
            kind = unicodedata.bidirectional(char)
            if kind in ("R", "AL"):
                rtl += 1
                break
            if kind == "L":
                ltr += 1
                break
    return "rtl" if rtl and rtl > RTL_WORD_SHARE * (rtl + ltr) else "ltr"


# A sentence ends at . ! ? ؟ ؛ … (optionally followed by closing quotes/brackets) before a space,
# or at a line break. "Russia-Now.com" and "3.5" do not end sentences: no space follows the dot.
_SENTENCE_END = re.compile(r"[.!?؟؛…]+[\"'”’»)\]]*(?=\s)|\n+")
_ABBREVIATIONS = re.compile(r"(?:\b(?:Mr|Mrs|Ms|Dr|Prof|St|vs|etc|e\.g|i\.e|U\.S|U\.K|No)|\b[A-Z])\.$")
# Common Arabic abbreviations: د. (doctor) أ. (professor/Mr) م. (engineer) ص.ب. (PO box) أ.د. ج. ت. …
# "م." or "هـ." right after a year (١٩٩٠ م.) is an era mark and may end the sentence.
_ARABIC_ABBREVIATIONS = re.compile(
    r"(?<![\w\u0610-\u061a\u064b-\u065f\u0670\u0640])"
    r"(?:د|أ|م|ج|ت|ش|ص|س|ع|ق|هـ|ص\.ب|ص\. ب|أ\.د|ق\.م|ر\.س)\.[\"'”’»)\]]*$"
)
_ERA_MARK = re.compile(r"[\d\u0660-\u0669]\s*(?:م|هـ)\.[\"'”’»)\]]*$")
# Quotations kept in one sentence when they close within this many characters.
_MAX_QUOTE_CHARS = 400
# Only guillemets: Arabic text often writes “ for both ends of a quotation, so “…” cannot be paired.
_OPENING, _CLOSING = "«", "»"


def paragraphs(text: str) -> list[Span]:
    """Split into paragraphs: blank-line separated if the text has blank lines, else by line.

    Example: paragraphs("a\\n\\nb") == [Span(0, 1), Span(3, 4)]
    """
    separator = r"\n[ \t]*\n\s*" if re.search(r"\n[ \t]*\n", text) else r"\n\s*"
    spans, start = [], 0
    for match in re.finditer(separator, text):
        spans.append(Span(start, match.start()))
        start = match.end()
    spans.append(Span(start, len(text)))
    return [s for s in (_strip(text, span) for span in spans) if s.end > s.start]


def sentences(text: str, span: Span | None = None) -> list[Span]:
    """Split text (or one span of it) into sentence spans, trimmed of surrounding whitespace.

    Example: sentences("Hi there. مرحبا؟ Bye") == [Span(0, 9), Span(10, 16), Span(17, 20)]

    Abbreviations (Dr., U.S., د., ص.ب.) do not end a sentence, and neither does punctuation inside a
    quotation in guillemets («…») that closes shortly after in the same span: the quote stays whole.

    Example: sentences("أجاب د. سامر. شكراً") == [Span(0, 13), Span(14, 19)]
    """
    span = span or Span(0, len(text))
    out, start = [], span.start
    for match in _SENTENCE_END.finditer(text, span.start, span.end):
        if match.group().strip() and (
            _ABBREVIATIONS.search(text, start, match.end())
            or (
                _ARABIC_ABBREVIATIONS.search(text, start, match.end())
                and not _ERA_MARK.search(text, start, match.end())
            )
            or _inside_quotation(text, start, match.end(), span.end)
        ):
            continue
        out.append(Span(start, match.end()))
        start = match.end()
    out.append(Span(start, span.end))
    return [s for s in (_strip(text, sp) for sp in out) if s.end > s.start]


def _inside_quotation(text: str, start: int, end: int, limit: int) -> bool:
    """True when text[start:end] leaves a «…» quotation open that closes before `limit` (and soon)."""
    head = text[start:end]
    depth = sum(head.count(c) for c in _OPENING) - sum(head.count(c) for c in _CLOSING)
    if depth <= 0:
        return False
    window = text[end : min(limit, end + _MAX_QUOTE_CHARS)]
    return any(c in window for c in _CLOSING)


# Clause marks a long run may be split after: Arabic comma and semicolon, Latin comma and semicolon.
_CLAUSE = re.compile(r"[،؛,;](?=\s)")
_SPACE = re.compile(r"\s+")


def split_long(text: str, span: Span, max_chars: int) -> list[Span]:
    """Split a span longer than `max_chars` characters at clause marks, then at word boundaries.

    Pieces are as long as possible up to `max_chars`, trimmed of whitespace, and cover the span's
    text with nothing but whitespace between them; a single word longer than `max_chars` is cut
    every `max_chars` characters. A span that fits is returned as it is.

    Example: split_long("aa, bb cc", Span(0, 9), 6) == [Span(0, 3), Span(4, 9)]
    """
    if span.end - span.start <= max_chars:
        return [span]
    out: list[Span] = []
    clause_cuts = [m.end() for m in _CLAUSE.finditer(text, span.start, span.end)]
    for clause in _pack(span, clause_cuts, max_chars):
        clause = _strip(text, clause)
        word_cuts = [m.start() for m in _SPACE.finditer(text, clause.start, clause.end)]
        for piece in _pack(clause, word_cuts, max_chars):
            piece = _strip(text, piece)
            out.extend(
                Span(a, min(a + max_chars, piece.end)) for a in range(piece.start, piece.end, max_chars)
            )
    return [s for s in (_strip(text, sp) for sp in out) if s.end > s.start]


def _pack(span: Span, cuts: list[int], max_chars: int) -> list[Span]:
    """Greedy pieces of `span` ending at `cuts`, each at most `max_chars` long where a cut allows."""
    pieces, start = [], span.start
    while span.end - start > max_chars:
        fits = [c for c in cuts if start < c <= start + max_chars]
        later = [c for c in cuts if c > start]
        cut = fits[-1] if fits else (later[0] if later else span.end)
        pieces.append(Span(start, cut))
        start = cut
    if start < span.end:
        pieces.append(Span(start, span.end))
    return pieces


def _strip(text: str, span: Span) -> Span:
    """Shrink a span so it neither starts nor ends with whitespace."""
    start, end = span.start, span.end
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return Span(start, end)


# What announces an enumeration: a closing colon, or a count of things ("three new projects",
# «ثلاثة مشاريع»: a cardinal from two to twenty, in digits or words, with its Arabic prefixes), or
# "the following" («التالية», «الآتية»). Words matched on `normalize`d text (ة → ه, ى → ي).
_COUNT_WORDS_AR = (
    "اثنان اثنين اثنتان اثنتين ثلاث ثلاثه اربع اربعه خمس خمسه ست سته سبع سبعه ثمان ثماني ثمانيه "
    "تسع تسعه عشر عشره عده"
).split()
# "the following" takes no particle: «بالتالي» is "therefore", not an announcement.
_FOLLOWING_AR = "التاليه التالي الاتيه الاتي".split()
_COUNT_WORDS_EN = "two three four five six seven eight nine ten eleven twelve several following below".split()
_ANNOUNCING = re.compile(
    r"(?:^|[\s(])(?:[وبلف]?(?:"
    + "|".join(_COUNT_WORDS_AR)
    + r")|"
    + "|".join(_FOLLOWING_AR + _COUNT_WORDS_EN)
    + r"|[2-9]|1\d|20)"
    r"(?=$|[\s.,:;،؛)])"
)
_CLOSING_COLON = re.compile(r"[:：]\s*[\"'”’»)\]]*\s*$")


def announces_enumeration(sentence: str) -> bool:
    """True when a sentence announces a list: it ends with a colon, or counts things (two to twenty,
    in digits or words, Arabic or English) or names "the following".

    Example: announces_enumeration("أعلنت البلدية عن ثلاثة مشاريع جديدة في المدينة.") is True
    """
    if _CLOSING_COLON.search(sentence):
        return True
    return bool(_ANNOUNCING.search(normalize(sentence)))
