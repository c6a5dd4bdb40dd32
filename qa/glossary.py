"""Glossary: a bilingual dictionary as a second witness for an English rendering of Arabic words.

The reader's renderings are checked by a cross-lingual similarity (qa.verify), which a fluent but
wrong rendering can pass: "Sunday" for «يوم الجمعة» (Friday) is close in meaning to it. A
dictionary does not share that failure: it says which English words each Arabic word can mean.
`witness(rendering, source)` gives the share of the rendering's content words that gloss some word
of the source, and the day or month names the rendering holds against a source whose words gloss
to none of them, or to other ones (a contradiction, refused outright by the reader).

The dictionary is FreeDict's Arabic-English (Debian's `dict-freedict-ara-eng`, GPL, from
Arabeyes; 52,996 headwords), read from its dictd file (`.dict.dz`, gzip-compatible) once per
process. No library reads dictd files without a server (dictd, dico) that we would have to run:
the format is a header line "word /IPA/" followed by numbered glosses, parsed here in a few lines.
When the package is not installed the witness says nothing (`available()` is False) and the
reader keeps its other checks; `make setup` installs it.

Arabic words are matched on normalised text (qa.text.normalize: diacritics, alef and ya forms)
after stripping the attached particles and the article (و، ف، ب، ل، ك، ال، لل) and common suffixes,
so «بالكرملين» finds «الكرملين» (Kremlin). English words are compared by a crude stem (plural and
verb endings dropped). Leaves out: phrases (only single-word glosses are used), word sense, and
the reverse direction (English to Arabic). The calendar's names are added from a table
(`CALENDAR`): a wrong day or month is the failure this witness exists to catch.
"""

from __future__ import annotations

import gzip
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from qa import text as qtext

DICTIONARY = Path("/usr/share/dictd/freedict-ara-eng.dict.dz")
# An Arabic word: letters and the marks written on them (harakat, superscript alef, tatweel), not
# the punctuation that shares their Unicode block (U+060C «،», U+061B «؛», U+061F «؟», U+066A-066D
# «٪٫٬٭», U+06D4 «۔») nor its digits (U+0660-0669): «الجمعة،» is the word «الجمعة» and a comma
# (before, the comma was read as part of the word, and «الجمعة،» found no Friday).
ARABIC_WORD = re.compile(
    r"[\u0610-\u061a\u0620-\u065f\u066e-\u06d3\u06d5-\u06dc\u06df-\u06e8\u06ea-\u06fc\u06ff]+"
)
_HEADER = re.compile(r"^(\S.*?) /[^/]*/\s*$")
_GLOSS = re.compile(r"^(?:\d+\.\s*)?(.+?)\s*$")
_PREFIXES = ("وبال", "وال", "فال", "بال", "كال", "لل", "ال", "و", "ف", "ب", "ل", "ك")
_SUFFIXES = ("ات", "ون", "ين", "ان", "ها", "هم", "ة", "ه", "ي")
DAYS_AND_MONTHS = frozenset(
    """monday tuesday wednesday thursday friday saturday sunday january february march april may june
    july august september october november december""".split()
)
# The calendar, which FreeDict covers only in part (it has «الجمعة» but not «أكتوبر» or «مارس»):
# weekdays, the months as Egypt and the Gulf write them, and as the Levant and Iraq do (a
# two-word Levantine month, «تشرين الأول», glosses to both of its word's months).
CALENDAR = {
    "الاثنين": "monday", "الإثنين": "monday", "الثلاثاء": "tuesday", "الأربعاء": "wednesday",
    "الخميس": "thursday", "الجمعة": "friday", "السبت": "saturday", "الأحد": "sunday",
    "يناير": "january", "فبراير": "february", "مارس": "march", "أبريل": "april", "إبريل": "april",
    "مايو": "may", "يونيو": "june", "يونيه": "june", "يوليو": "july", "يوليه": "july",
    "أغسطس": "august", "سبتمبر": "september", "أكتوبر": "october", "نوفمبر": "november",
    "ديسمبر": "december", "شباط": "february", "آذار": "march", "نيسان": "april", "أيار": "may",
    "حزيران": "june", "تموز": "july", "آب": "august", "أيلول": "september",
    "تشرين": "october november", "كانون": "december january",
}  # fmt: skip
# Capitalised words that are not content: they never count for or against a rendering.
_ENGLISH_STOP = frozenset(
    """a an the of in on at to for from by with and or but not no is are was were be been being has
    have had do does did will would can could should may might this that these those it its he she
    they them his her their there here who whom whose what which when where why how as into over
    under about after before between during than then so such also only very more most some any
    all each both other another same own""".split()
)


@dataclass(frozen=True)
class Witness:
    """What the dictionary says of a rendering: `share` of its content words that gloss a word of
    the source, in [0, 1] (None when it has no content word the dictionary could judge);
    `contradicted`: day or month names in the rendering that no source word glosses, where the
    source glosses to days or months of its own (or to none at all: "Sunday" for «يوم الجمعة»)."""

    share: float | None
    contradicted: tuple[str, ...]


def available(path: Path = DICTIONARY) -> bool:
    """True when the dictionary file is installed."""
    return path.is_file()


def stem(word: str) -> str:
    """A crude English stem: lower case, plural and verb endings dropped.

    Example: stem("Negotiations") == stem("negotiation") == "negotiation"
    """
    w = word.casefold()
    for ending in ("ies", "ied"):
        if w.endswith(ending) and len(w) > 4:
            return w[: -len(ending)] + "y"
    for ending in ("ing", "ed", "es", "s"):
        if w.endswith(ending) and len(w) - len(ending) >= 4:
            return w[: -len(ending)]
    return w


@lru_cache(maxsize=1)
def glosses(path: Path = DICTIONARY) -> dict[str, frozenset[str]]:
    """Normalised Arabic headword -> stems of its one-word English glosses ({} when not installed).

    Headwords are kept with and without their article, so «الجمعة» and «جمعة» both find Friday.
    """
    if not path.is_file():
        return {}
    with gzip.open(path, "rt", encoding="utf-8", errors="replace") as f:
        text = f.read()
    out: dict[str, set[str]] = {}
    head: list[str] = []
    for line in text.splitlines():
        match = _HEADER.match(line)
        if match and re.search(r"[\u0600-\u06FF]", match.group(1)):
            word = qtext.normalize(match.group(1)).strip()
            head = [word] if " " not in word else []
            if head and word.startswith("ال") and len(word) > 4:
                head.append(word[2:])
            continue
        gloss = _GLOSS.match(line)
        if not head or not gloss:
            continue
        english = gloss.group(1)
        if " " in english or not english.isascii() or not english.isalpha():
            continue
        for h in head:
            out.setdefault(h, set()).add(stem(english))
    for arabic, english in CALENDAR.items():
        for form in {qtext.normalize(arabic), qtext.normalize(arabic).removeprefix("ال")}:
            out.setdefault(form, set()).update(english.split())
    return {k: frozenset(v) for k, v in out.items()}


def word_forms(word: str) -> list[str]:
    """The normalised Arabic word and its forms without attached particles, article and suffixes.

    Example: "الكرملين" in word_forms("بالكرملين")
    """
    w = qtext.normalize(word)
    forms = [w]
    for prefix in _PREFIXES:
        if w.startswith(prefix) and len(w) - len(prefix) >= 2:
            forms.append(w[len(prefix) :])
            forms.append("ال" + w[len(prefix) :])
    for base in list(forms):
        for suffix in _SUFFIXES:
            if base.endswith(suffix) and len(base) - len(suffix) >= 2:
                forms.append(base[: -len(suffix)])
    return list(dict.fromkeys(forms))


def source_glosses(source: str, *, path: Path = DICTIONARY) -> set[str]:
    """Stems of every English gloss of every Arabic word of `source`."""
    table = glosses(path)
    out: set[str] = set()
    for word in ARABIC_WORD.findall(source):
        for form in word_forms(word):
            out |= table.get(form, frozenset())
    return out


def content_words(rendering: str) -> list[str]:
    """The English words of a rendering that carry meaning (no stopwords, digits or one-letter words)."""
    words = re.findall(r"[A-Za-z][A-Za-z'-]*[A-Za-z]", rendering)
    return [w for w in words if w.casefold() not in _ENGLISH_STOP]


def witness(rendering: str, source: str, *, path: Path = DICTIONARY) -> Witness:
    """What the dictionary says of `rendering` as English for the Arabic `source`; a `Witness`
    with share None and nothing contradicted when the dictionary is not installed.

    Example: witness("On Sunday", "يوم الجمعة").contradicted == ("Sunday",)
    """
    if not glosses(path):
        return Witness(None, ())
    found = source_glosses(source, path=path)
    words = content_words(rendering)
    share = sum(stem(w) in found for w in words) / len(words) if words else None
    named = [w for w in words if w.casefold() in DAYS_AND_MONTHS]
    contradicted = tuple(w for w in named if stem(w) not in found)
    return Witness(None if share is None else round(share, 4), contradicted)
