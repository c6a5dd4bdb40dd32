"""Text utilities: Arabic normalisation, tokens, sentences, paragraphs, language.

Everything here works on offsets into the original string and never alters it: normalisation is
used only to *match* text (BM25, lexical overlap, answer scoring), while citations always point at
exact spans of the source. Leaves out: morphology beyond light affix stripping, and any model.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Harakat, Quranic marks, superscript alef, and tatweel: dropped for matching.
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


def normalize(text: str) -> str:
    """Normalise text for matching: diacritics, tatweel, alef/hamza, ى/ي, ة/ه, digits, case.

    Example: normalize("الإرهابيّين ٣") == "الارهابيين 3"
    """
    return _DIACRITICS.sub("", text).translate(_CHAR_MAP).casefold()


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


@dataclass(frozen=True)
class Span:
    """A [start, end) character range of the original text."""

    start: int
    end: int


# A sentence ends at . ! ? ؟ ؛ … (optionally followed by closing quotes/brackets) before a space,
# or at a line break. "Russia-Now.com" and "3.5" do not end sentences: no space follows the dot.
_SENTENCE_END = re.compile(r"[.!?؟؛…]+[\"'”’»)\]]*(?=\s)|\n+")
_ABBREVIATIONS = re.compile(r"(?:\b(?:Mr|Mrs|Ms|Dr|Prof|St|vs|etc|e\.g|i\.e|U\.S|U\.K|No)|\b[A-Z])\.$")


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
    """
    span = span or Span(0, len(text))
    out, start = [], span.start
    for match in _SENTENCE_END.finditer(text, span.start, span.end):
        if match.group().strip() and _ABBREVIATIONS.search(text, start, match.end()):
            continue
        out.append(Span(start, match.end()))
        start = match.end()
    out.append(Span(start, span.end))
    return [s for s in (_strip(text, sp) for sp in out) if s.end > s.start]


def _strip(text: str, span: Span) -> Span:
    """Shrink a span so it neither starts nor ends with whitespace."""
    start, end = span.start, span.end
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return Span(start, end)
