"""Gloss: an Arabic sentence word by word, each word with its English glosses or its name in Latin
letters and its exact [start, end) offsets, from witnesses only, never a model's wording.

What an English reader gets for a cited sentence when no rendering passes (and the witnesses the
word-level verifier, qa.wordcheck, reads). For each word of the text (`gloss()`):
- a number written with digits (any script) or in words («ثلاثة», «مئة») gives its value;
- a day or a month gives its English name (`qa.glossary.CALENDAR`);
- the bilingual dictionaries: FreeDict's Arabic-English (Debian `dict-freedict-ara-eng`) on the
  word and its forms without attached particles, article and suffixes (`qa.glossary.word_forms`),
  then on its lemmas and stems from the morphological analyser, then FreeDict's English-Arabic
  (`dict-freedict-eng-ara`, 87,424 headwords) read backwards: the English headwords one of whose
  Arabic glosses is one of the word's forms. Both dictionaries are GPL data read at run time;
- a proper noun (the analyser's «اسم علم», or a word no dictionary knows that the name romanizer
  finds in its table of attested spellings) gets its Latin spelling from `arabic-name-romanizer`
  (MIT; dictionary first, a small ONNX model for unseen names, `transliterate`).
The lemma comes from `farahidi` (GPL-3.0-or-later, a pure-Python port of AlKhalil Morpho Sys 2, no
dependencies), asked only for words whose own forms no dictionary has (it takes ~20 ms a new
word). It is measured against Snowball's Arabic stemmer and against our affix stripping alone in
bench/bench_wordcheck.py (`lemmatisers`, docs/measurements.md); `qalsadi` (GPL, with the
`arramooz` dictionary package) was not tried.
No library glosses Arabic word by word from a dictionary, so the pieces are joined here.

Leaves out: word sense (every gloss is listed, most frequent reading first), multi-word
expressions («على الرغم من» is glossed word by word), and any model: neither the LLM's rendering
nor the word check's alignment witness (qa.align, contextual vectors), so a gloss never carries a
sense only an embedding suggested.
"""

from __future__ import annotations

import gzip
import logging
import re
import threading
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import farahidi
from arabic_name_romanizer import Transliterator

from qa import glossary as qglossary
from qa import text as qtext
from qa.types import WordGloss

log = logging.getLogger(__name__)

ARA_ENG = qglossary.DICTIONARY
ENG_ARA = Path("/usr/share/dictd/freedict-eng-ara.dict.dz")
MAX_GLOSSES = 4  # shown per word: FreeDict lists up to 20 senses, the first ones the common ones

_NUMBER = re.compile(r"[0-9٠-٩۰-۹]+(?:[.,٫٬][0-9٠-٩۰-۹]+)*%?")
_LATIN = re.compile(r"[A-Za-z][A-Za-z'’.-]*[A-Za-z]|[A-Za-z]")
TOKEN = re.compile(f"{qglossary.ARABIC_WORD.pattern}|{_NUMBER.pattern}|{_LATIN.pattern}")

# Function words (normalised): glossed when a dictionary has them, never counted as content.
FUNCTION_WORDS = frozenset(
    qtext.normalize(w)
    for w in (
        qtext.STOPWORDS
        | set(
            """
            ان انه انها انهم لان لانه كان كانت يكون تكون كانوا الا او ام بل لكن لكنه ولكن اما واما
            كذلك هناك هنا ذات هؤلاء اولئك الذي التي اللذين اللتين اللواتي اللاتي عليها عليهم منها
            منهم لهم بهم فيهم اليها اليهم عنه عنها عنهم معه معها معهم وفي ومن وعلي والي وعن ومع وان
            فان فقد وقد لقد ولم ولن وما ثم حين حينما عندما بينما لدي لدى لدي نحو خلال ضمن عبر تجاه
            وذلك وهذا وهذه الذين وكانت وكما كما مثل اي ايه اية سوي الي علي حتى ف و ب ل ك س يا
            تم وتم يتم تتم قام قامت وقام وقامت يقوم تقوم جميع الرغم بالرغم رغم وبالتالي بالتالي اذ
            بموجب حول لدى ازاء اثناء وفق وفقا حسب بحسب مدى عدة بعض معظم اكثر اقل هؤلاء ذاك عليه
            """.split()
        )
    )
    - {"لا", "لم", "لن", "غير", "مع", "بعد", "قبل", "بين", "فقط", "ايضا", "منذ"}
)

# Negations, normalised. Strong: always a negation. Weak: a negation in some readings only («ما»
# what/not, «غير» other/non-/but, «دون» without/below). «لا يزال», «ما زال» ("still") and an
# exception after it («لم … سوى/الا»: "only") are not negations (`negations()`).
STRONG_NEGATIONS = frozenset(
    "لا لم لن ليس ليست ليسوا لست لسنا لستم بلا بدون عدم ولا ولم ولن وليس فلا فلم فلن".split()
)
WEAK_NEGATIONS = frozenset("ما غير دون ومن دون وما وغير".split()) - {"ومن"}
_NOT_NEGATED = re.compile(r"^(?:و|ف)?(?:لا|ما)$")
_STILL = frozenset("يزال تزال يزالون تزالان زال زالت زالوا يزل تزل نزال ازال".split())
_EXCEPT = frozenset("الا سوي سوى".split())

# Numbers in words (normalised): value; «ثلاث» and «ثلاثة» alike; tens, hundreds, thousands.
NUMBER_WORDS = {
    "واحد": 1, "واحده": 1, "اثنان": 2, "اثنين": 2, "اثنتان": 2, "اثنتين": 2, "ثلاث": 3, "ثلاثه": 3,
    "اربع": 4, "اربعه": 4, "خمس": 5, "خمسه": 5, "ست": 6, "سته": 6, "سبع": 7, "سبعه": 7, "ثمان": 8,
    "ثماني": 8, "ثمانيه": 8, "تسع": 9, "تسعه": 9, "عشر": 10, "عشره": 10, "عشرون": 20, "عشرين": 20,
    "ثلاثون": 30, "ثلاثين": 30, "اربعون": 40, "اربعين": 40, "خمسون": 50, "خمسين": 50, "ستون": 60,
    "ستين": 60, "سبعون": 70, "سبعين": 70, "ثمانون": 80, "ثمانين": 80, "تسعون": 90, "تسعين": 90,
    "مئه": 100, "مائه": 100, "مئتان": 200, "مئتين": 200, "الف": 1000, "الفان": 2000, "الفين": 2000,
    "مليون": 10**6, "مليار": 10**9, "نصف": 0.5, "ربع": 0.25,
}  # fmt: skip
ORDINALS = {
    "اول": 1, "اولي": 1, "ثاني": 2, "ثانيه": 2, "ثالث": 3, "ثالثه": 3, "رابع": 4, "رابعه": 4,
    "خامس": 5, "خامسه": 5, "سادس": 6, "سادسه": 6, "سابع": 7, "سابعه": 7, "ثامن": 8, "ثامنه": 8,
    "تاسع": 9, "تاسعه": 9, "عاشر": 10, "عاشره": 10,
}  # fmt: skip

# Glosses of the commonest particles, shown first: FreeDict lists their rare senses first or reads
# them as other words after normalisation («على» "ali", «الى» "automatic", «بعد» "distance").
PARTICLES = {
    "في": "in", "من": "from, of", "الي": "to", "علي": "on", "عن": "about, from", "مع": "with",
    "بعد": "after", "قبل": "before", "بين": "between", "حول": "about, around", "ان": "that",
    "انه": "that he", "انها": "that she", "انهما": "that they (two)", "انهم": "that they",
    "لا": "not, no", "لم": "did not", "لن": "will not", "ليس": "is not", "ما": "what, not",
    "غير": "other than, non-, but", "بلا": "without", "دون": "without", "بدون": "without",
    "هذا": "this", "هذه": "this", "ذلك": "that", "تلك": "that", "التي": "which", "الذي": "which, who",
    "الذين": "who", "كان": "was", "كانت": "was", "قد": "(has), may", "لقد": "indeed", "ثم": "then",
    "او": "or", "و": "and", "حيث": "where", "كما": "as", "عند": "at, when", "منذ": "since",
    "خلال": "during, through", "ضد": "against", "ايضا": "also", "فقط": "only", "كل": "every, all",
    "حتي": "until, even", "اذا": "if", "لكن": "but", "بل": "rather", "الا": "except",
    "سوي": "only, except", "هو": "he, it", "هي": "she, it", "هم": "they", "نحو": "towards, about",
    "سبيل": "way, sake",  # «على سبيل المثال», for example: FreeDict lacks it, the romanizer calls it a name
}  # fmt: skip
_HEADER = re.compile(r"^(\S.*?) /[^/]*/\s*$")
_ENUM = re.compile(r"^\d+\.\s*")
_LOCK = threading.Lock()


@dataclass(frozen=True)
class Dictionaries:
    """Both FreeDict directions, normalised: `ara_eng` Arabic form -> English glosses (as written,
    lower case, in the dictionary's order); `eng_ara` English headword (lower case) -> the Arabic
    forms of its one-word glosses; `reverse` Arabic form -> English headwords glossed by it."""

    ara_eng: dict[str, tuple[str, ...]]
    eng_ara: dict[str, frozenset[str]]
    reverse: dict[str, tuple[str, ...]]


def _entries(path: Path):
    """(headword, [gloss lines]) of a dictd file (header "word /IPA/", then numbered glosses)."""
    with gzip.open(path, "rt", encoding="utf-8", errors="replace") as f:
        text = f.read()
    head, lines = None, []
    for line in text.splitlines():
        match = _HEADER.match(line)
        if match:
            if head is not None:
                yield head, lines
            head, lines = match.group(1), []
        elif head is not None and line.strip():
            lines.append(_ENUM.sub("", line.strip()))
    if head is not None:
        yield head, lines


def _extend(bucket: list[str], items: list[str]) -> None:
    bucket.extend(i for i in dict.fromkeys(items) if i not in bucket)


def _bare(word: str) -> str:
    """A normalised Arabic form without its article (the key the dictionaries are read with)."""
    w = qtext.normalize(word).strip()
    return w[2:] if w.startswith("ال") and len(w) > 3 else w


_DICT_LOCK = threading.Lock()


def dictionaries(ara_eng: Path = ARA_ENG, eng_ara: Path = ENG_ARA) -> Dictionaries:
    """Both dictionaries, read once (~2 s) by one thread; a missing file gives empty tables (`make
    setup` installs both)."""
    with _DICT_LOCK:
        return _read_dictionaries(ara_eng, eng_ara)


@lru_cache(maxsize=1)
def _read_dictionaries(ara_eng: Path, eng_ara: Path) -> Dictionaries:
    forward: dict[str, list[str]] = {}
    without_article: dict[str, list[str]] = {}
    if ara_eng.is_file():
        for head, lines in _entries(ara_eng):
            if not qglossary.ARABIC_WORD.search(head) or " " in head.strip():
                continue
            glosses = [g.casefold() for g in lines if g.isascii()]
            _extend(forward.setdefault(qtext.normalize(head).strip(), []), glosses)
            # «الجمعة» is also found as «جمعة»; «ألمع» (shiniest) is not «مع» (with): only a written
            # article (a bare alef) is dropped, after the headwords' own glosses.
            if re.sub(r"[\u064b-\u065f\u0670]", "", head).startswith("ال"):
                _extend(without_article.setdefault(_bare(head), []), glosses)
        for key, glosses in without_article.items():
            _extend(forward.setdefault(key, []), glosses)
    english: dict[str, set[str]] = {}
    backward: dict[str, list[str]] = {}
    if eng_ara.is_file():
        for head, lines in _entries(eng_ara):
            word = head.strip().casefold()
            if not re.fullmatch(r"[a-z][a-z'-]*", word):
                continue
            for line in lines:
                for part in re.split(r"[،,؛;]", line):
                    words = qglossary.ARABIC_WORD.findall(part)
                    if len(words) != 1:
                        continue  # one-word glosses only: a phrase's words are not the headword's
                    for form in forms(words[0]):  # «فرنسيون» is found as «فرنسي» too
                        english.setdefault(word, set()).add(form)
                        bucket = backward.setdefault(form, [])
                        if word not in bucket:
                            bucket.append(word)
    for arabic, names in qglossary.CALENDAR.items():
        bucket = forward.setdefault(_bare(arabic), [])
        bucket[:0] = [n for n in names.split() if n not in bucket]  # the calendar's name first
    return Dictionaries(
        {k: tuple(v) for k, v in forward.items() if v},
        {k: frozenset(v) for k, v in english.items()},
        {k: tuple(v) for k, v in backward.items()},
    )


def available() -> bool:
    """True when both dictionaries are installed."""
    return ARA_ENG.is_file() and ENG_ARA.is_file()


@dataclass(frozen=True)
class Morphology:
    """What the analyser says of one word: its lemmas and stems (normalised, without article),
    roots, and whether a likely reading is a proper noun."""

    lemmas: tuple[str, ...]
    roots: tuple[str, ...]
    proper: bool


MAX_READINGS = 3  # the analyser's readings kept per word (most frequent first)


@lru_cache(maxsize=65536)
def morphology(word: str) -> Morphology:
    """The analyser's lemmas, stems and roots of `word` (`farahidi`; its lexicon loads on first use, ~1 s)."""
    with _LOCK:  # the analyser loads its lexicon lazily, once
        readings = farahidi.analyze(word)[:MAX_READINGS]
    lemmas, roots = [], []
    for r in readings:
        for form in (r.lemma, r.stem):
            if form:
                lemmas.append(_bare(form))
        if r.root:
            roots.append(r.root)
    proper = any(r.type == "اسم علم" for r in readings[:2])
    return Morphology(tuple(dict.fromkeys(lemmas)), tuple(dict.fromkeys(roots)), proper)


# Spellings FreeDict writes one way and news another: «أميركي» (Levant) for «أمريكي».
_VARIANTS = (("ميرك", "مريك"),)


def forms(word: str) -> list[str]:
    """The word's own forms (particles, article, suffixes stripped), without article, and their
    dictionary spellings («الأميركيين» → «اميركي», «امريكي», …)."""
    out = [_bare(f) for f in qglossary.word_forms(word)]
    for a, b in _VARIANTS:
        out += [f.replace(a, b) for f in out if a in f]
    return list(dict.fromkeys(out))


@lru_cache(maxsize=16384)
def romanize(name: str) -> str | None:
    """The likeliest Latin spelling of an Arabic name (`arabic-name-romanizer`), or None.

    Example: romanize("ماريا زاخاروفا") == "Maria Zakharova"
    """
    with _LOCK:
        found = _transliterator().transliterate(name, top_k=2)
    return found[0].text if found else None


@lru_cache(maxsize=16384)
def attested_name(word: str) -> bool:
    """True when the romanizer's table of attested spellings (Wikidata) has `word` as a name."""
    with _LOCK:
        found = _transliterator().transliterate(word, top_k=2)
    return bool(found) and all(u.source == "dictionary" for u in found[0].units)


@lru_cache(maxsize=1)
def _transliterator() -> Transliterator:
    return Transliterator()


def number_value(word: str) -> float | None:
    """The value of a number in digits (any script) or in words, else None.

    Example: number_value("٢٠١٦") == 2016; number_value("والثلاثين") == 30
    """
    w = qtext.normalize(word)
    if _NUMBER.fullmatch(w):
        try:
            return float(re.sub(r"[,٬]", "", w.rstrip("%")).replace("٫", "."))
        except ValueError:
            return None
    for f in [w, *forms(w)]:
        if f in NUMBER_WORDS:
            return float(NUMBER_WORDS[f])
    return None


def ordinal_value(word: str) -> int | None:
    """The value of an ordinal in words («الثالث» 3), else None."""
    for f in forms(word):
        if f in ORDINALS:
            return ORDINALS[f]
    return None


def is_function(word: str) -> bool:
    """True for a function word (particle, pronoun, auxiliary): never a content word."""
    w = qtext.normalize(word)
    return w in FUNCTION_WORDS or (w[:1] in "وف" and w[1:] in FUNCTION_WORDS)


# «غير أن/أنه/أنها…»: "however" (the local model wrote "it did not emit" for «غير أنه انبعثت»).
_HOWEVER = frozenset("ان انه انها انهم انهما اننا اني".split())


def negations(text: str) -> list[tuple[int, int, bool]]:
    """The negations of an Arabic text: (start, end, strong) of each negating word; «لا يزال» /
    «ما زال» ("still"), a negation answered by an exception («لم … سوى/الا»: "only") and «غير أنّ»
    ("however") are left out.

    Example: [t[2] for t in negations("لم يتم بحث الموضوع")] == [True]
    """
    words = [(m.start(), m.end(), qtext.normalize(m.group())) for m in qglossary.ARABIC_WORD.finditer(text)]
    out = []
    for i, (start, end, w) in enumerate(words):
        strong, weak = w in STRONG_NEGATIONS, w in WEAK_NEGATIONS
        if not (strong or weak):
            continue
        after = [x[2] for x in words[i + 1 : i + 3]]
        if _NOT_NEGATED.match(w) and after and after[0] in _STILL:
            continue
        if w in ("غير", "وغير") and after and after[0] in _HOWEVER:
            continue  # «غير أنّه …» is "however …", not a negation
        if w not in ("غير", "وغير", "دون", "بدون", "بلا", "عدم") and any(
            x in _EXCEPT for _, _, x in words[i + 1 : i + 12]
        ):
            continue
        out.append((start, end, strong))
    return out


def lookup(word: str) -> tuple[tuple[str, ...], str | None]:
    """The English glosses of one Arabic word and the witness that gave them: "dictionary" (the
    word or its stripped forms in FreeDict ara-eng), "reverse" (in FreeDict eng-ara read
    backwards), "lemma" (the analyser's lemmas or stems in either, asked only when the word's own
    forms found nothing), or ((), None)."""
    d = dictionaries()
    found = [g for k in forms(word) for g in d.ara_eng.get(k, ())]
    if found:
        return tuple(dict.fromkeys(found)), "dictionary"
    found = [g for k in forms(word) for g in d.reverse.get(k, ())]
    if found:
        return tuple(dict.fromkeys(found)), "reverse"
    lemmas = morphology(word).lemmas  # the analyser only where the word's own forms found nothing
    found = [g for k in lemmas for g in d.ara_eng.get(k, ())]
    if found:
        return tuple(dict.fromkeys(found)), "lemma"
    found = [g for k in lemmas for g in d.reverse.get(k, ())]
    if found:
        return tuple(dict.fromkeys(found)), "lemma"
    return (), None


def direct(word: str) -> bool:
    """True when a dictionary has the word itself (without only its article or a conjunction): its
    glosses are not those of a shorter word hidden in it («بوتين» holds «تين», fig)."""
    d = dictionaries()
    keys = {_bare(word), _bare(re.sub(r"^[وف]", "", qtext.normalize(word)))}
    for a, b in _VARIANTS:
        keys |= {k.replace(a, b) for k in keys}
    return any(k in d.ara_eng or k in d.reverse for k in keys)


def gloss(text: str, *, offset: int = 0) -> tuple[WordGloss, ...]:
    """Every word of `text` glossed, in order, with [start, end) offsets into the document
    (`offset` is where `text` starts in it). Needs no model: dictionaries, analyser, romanizer.

    Example: [g.glosses[0] for g in gloss("يوم الجمعة،") if g.glosses] == ["day", "friday"]
    """
    negated = {(s, e) for s, e, _ in negations(text)}
    out = []
    for m in TOKEN.finditer(text):
        word = m.group()
        start, end = m.start() + offset, m.end() + offset
        kind, glosses, latin, witness = _word(word, negation=(m.start(), m.end()) in negated)
        out.append(WordGloss(start, end, word, kind, glosses, latin, witness))
    return tuple(out)


@lru_cache(maxsize=65536)
def _word(word: str, *, negation: bool) -> tuple[str, tuple[str, ...], str | None, str | None]:
    """(kind, glosses, Latin name, witness) of one word."""
    if _LATIN.fullmatch(word):
        return "latin", (word,), None, "verbatim"
    value = number_value(word)
    if value is not None:
        return "number", (f"{value:g}" if value < 1e6 else f"{value:,.0f}",), None, "number"
    function = is_function(word)
    glosses, witness = lookup(word)
    kind = "negation" if negation else ("function" if function else "content")
    particle = PARTICLES.get(re.sub(r"^[وف](?=..)", "", qtext.normalize(word)))
    if particle:
        glosses, witness = tuple(dict.fromkeys([*particle.split(", "), *glosses])), witness or "dictionary"
    latin = None
    if not function and not negation and not (witness in ("dictionary", "reverse") and direct(word)):
        morph = morphology(word)
        # A proper noun by the analyser; or a word no dictionary knows that the analyser cannot
        # read or the romanizer has among attested names: a foreign name or loanword («لافروف»),
        # shown in Latin letters.
        unknown = not glosses and (not morph.lemmas or attested_name(_name_form(word)))
        if morph.proper or unknown:
            kind = "name"
            latin = romanize(_name_form(word))
            if not glosses:
                witness = "name"
    return kind, glosses[:MAX_GLOSSES], latin, witness


def _name_form(word: str) -> str:
    """A name without an attached conjunction or preposition and the article («وبالكرملين» → «كرملين»)."""
    w = re.sub(r"^(?:و|ف)?(?:ب|ل|ك)?(?:ال)?", "", word) if len(word) > 5 else word
    return w or word
