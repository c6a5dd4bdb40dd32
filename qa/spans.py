"""Locating copied words in a sentence: exact `[start, end)` offsets for words a model says it copied.

A reader (qa.reader) names the words of a cited sentence that answer; a 1.5B model copies them
imperfectly (dropped diacritics, another alef form, a letter lost). `find_span` matches on folded
text (qa.text.normalize: diacritics, alef/hamza forms, case; punctuation and spacing dropped), maps
the match back to the original characters and widens it to whole words, so that the quote shown
is always `sentence[start:end]`, never the model's own spelling. A near copy is accepted at
`SPAN_FUZZY_RATIO`.

Leaves out: which sentence the words were copied from (qa.reading.locate) and whether they answer
(qa.answer_checks).
"""

from __future__ import annotations

import re
import unicodedata
from difflib import SequenceMatcher

from qa import text as qtext

# A copied span that differs from the sentence by a letter or two ("كيل أورتون" for «كايل أورتون»)
# is located by the best word window with this similarity (difflib ratio on normalised text).
SPAN_FUZZY_RATIO = 0.85


def _folded(text: str) -> tuple[str, list[int]]:
    """`text` normalised for matching (qtext.normalize, punctuation dropped, spaces collapsed) and,
    for each folded character, the offset of the character it came from."""
    out: list[str] = []
    origin: list[int] = []
    for i, ch in enumerate(text):
        if ch.isspace() or not (ch.isalnum() or ch in "%٪"):
            if out and out[-1] != " ":
                out.append(" ")
                origin.append(i)
            continue
        for folded in qtext.normalize(ch):
            out.append(folded)
            origin.append(i)
    return "".join(out), origin


def _in_word(ch: str) -> bool:
    """A letter, digit, or combining mark (Arabic diacritics belong to the word they sit on)."""
    return ch.isalnum() or unicodedata.category(ch).startswith("M")


def _widen(text: str, start: int, end: int) -> tuple[int, int]:
    """Widen [start, end) to whole words of `text`, diacritics included."""
    while start > 0 and _in_word(text[start - 1]):
        start -= 1
    while end < len(text) and _in_word(text[end]):
        end += 1
    return start, end


def find_span(sentence: str, span: str) -> tuple[int, int, bool] | None:
    """[start, end) of `span` in `sentence` as whole words, and whether the match was fuzzy; or None.

    Matching ignores diacritics, alef/hamza forms, punctuation, case and spacing; a span that is
    not found exactly may match the most similar window of words at `SPAN_FUZZY_RATIO` or above.

    Example: find_span("قال إنّ الغرفة في الأردن.", "في الاردن") == (16, 24, False)
    """
    target, _ = _folded(span)
    target = target.strip()
    if not target:
        return None
    folded, origin = _folded(sentence)
    at = folded.find(target)
    if at >= 0:
        start, end = _widen(sentence, origin[at], origin[at + len(target) - 1] + 1)
        return start, end, False
    words = [(m.start(), m.end()) for m in re.finditer(r"\S+", folded)]
    n = len(target.split())
    best, where = 0.0, None
    for size in {max(1, n - 1), n, n + 1}:
        for i in range(len(words) - size + 1):
            a, b = words[i][0], words[i + size - 1][1]
            ratio = SequenceMatcher(None, folded[a:b], target, autojunk=False).ratio()
            if ratio > best:
                best, where = ratio, (a, b)
    if where is None or best < SPAN_FUZZY_RATIO:
        return None
    start, end = _widen(sentence, origin[where[0]], origin[where[1] - 1] + 1)
    return start, end, True
