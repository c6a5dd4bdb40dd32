"""OCR: scanned pages and photos of articles read into text with word boxes (tesseract 5, Arabic).

A page image is read by tesseract (through pytesseract, which runs the `tesseract` program and parses
its TSV) into words with their boxes and confidences, in reading order: tesseract orders an Arabic
line's words right to left. The page's text is built here from those words, so that every word has
exact `[start, end)` offsets in it: the words of a line, and the lines of one of tesseract's
paragraphs, joined by spaces; paragraphs by blank lines. Each word is folded (`qtext.fold_text`) as
every PDF's text is, and repaired where tesseract predictably misreads Arabic news text (`repair`:
the Arabic comma read as a Latin comma, a hamza, a full stop or a colon; a letter read with the
wrong dots), each word whole, judged by tesseract's own per-word confidence and two witnesses: the
Arabic word list of hunspell-ar (`Lexicon`, hunspell's command line: no Python binding is needed
for a yes/no per word) and the page's other words; a Latin word, which the Arabic model reads as
digits or symbols, is read again by tesseract's English model on its own box (`read_latin`; those
readings are kept with the page). With the "pages" and "blocks" repairs (not on by default), a
document's pages and tesseract's paragraphs are joined again by a space where a paragraph runs on
over the break (`runs_on`: no sentence-final mark before it, a last line as wide as the page's
column; `join_pages` for pages), so that a paragraph cut by a page break or by tesseract's layout
is one paragraph, as in the source. The text then goes through the
chunking every format shares (qa/ingest.py): a citation's offsets map back to the boxes of its words (`recognition`), and the page shows the
sentence boxed on the page image (`highlight`).

Pages come from images (.png .jpg .jpeg .tif .tiff .webp, through Pillow; a TIFF may hold several
pages, a photo is turned upright by its EXIF orientation) and from PDF pages without a usable text
layer, rendered by pypdfium2 at `Settings.ocr_dpi`. Bounded: at most `Settings.ocr_max_pages` pages
and `Settings.ocr_max_pixels` pixels a page; an image over that is refused by its header, before it
is decoded; a PDF page is rendered at a lower resolution to fit. Recognised once: a page's words
are kept under the hash of the file (with the OCR settings) in `Settings.ocr_path`, with a
downscaled page image for display; the words of an indexed document are kept under its text's hash
(`OcrStore`).

Leaves out: layout analysis beyond tesseract's own page segmentation (columns are its blocks),
deskewing and denoising of our own (tesseract's binarisation copes with the slight rotation, blur
and noise bench/bench_ocr.py adds), handwriting, and languages other than `Settings.ocr_languages`
(Arabic alone, the default) but for the Latin words the "latin" repair reads with the English model:
Cyrillic, Greek or CJK in an Arabic page comes out as digits and symbols.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

from tqdm import tqdm

from qa import text as qtext
from qa.config import Settings
from qa.errors import InputError
from qa.types import Answer, Citation, OcrPage, OcrWord, Recognition

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".webp")
INSTALL_HINT = "apt-get install tesseract-ocr tesseract-ocr-ara (`make setup` installs them)"
# The stored page image is at most this wide (px): a 300 dpi A4 page is 2480 px wide, which the page
# shows no better than 1400 px, at a quarter of the file size.
DISPLAY_WIDTH = 1400
# Bump when what is kept of tesseract's reading changes, so that kept pages are read again (the text
# is built from it, with the repairs, on every load).
FORMAT_VERSION = 3
# Tesseract's own OpenMP threads make it slower, not faster, on these 2-core machines: one 300 dpi
# page took 11.5 s with them and 1.4 s with OMP_THREAD_LIMIT=1, the same words (measured 2026-12-03,
# tesseract 5.3.0). So each tesseract runs on one thread, and pages are read two at a time.
TESSERACT_THREADS = "1"
PARALLEL_PAGES = 2
# Tesseract's Arabic model reads the Arabic comma, semicolon and question mark after an Arabic word
# as their Latin look-alikes (every «،» of the seed article came out ","): put back after Arabic letters.
_LATIN_MARKS = re.compile(r"(?<=[\u0621-\u064a\u0671-\u06d3])[,;?](?=[\"'”’»)\]]*$)")
_ARABIC_MARKS = {",": "\u060c", ";": "\u061b", "?": "\u061f"}


# ---------------------------------------------------------------------------------------------
# Repairs of what the recogniser predictably gets wrong in Arabic news text

# The repairs `page_text` makes, by name; each was measured on the OCR benchmark (bench/bench_ocr.py,
# `--repairs`; tuned on the dev articles it does not report on) and `DEFAULT_REPAIRS` keeps those
# that helped (docs/measurements.md, "Scans"):
# - "marks": a Latin comma, semicolon or question mark closing an Arabic word is the Arabic one.
# - "closers": the same after a closing quote or bracket of an Arabic word or a number («الإرهاب”,»).
# - "hamza": a word the lexicon does not know that ends in «ء», where it knows the word without
#   it, ends in «،»: tesseract reads the Arabic comma as a hamza («أطفالء» for «أطفال،»).
# - "stops": a full stop, colon or semicolon closing a word read with confidence below
#   `STOP_BELOW` is «،»: tesseract reads the comma so when unsure (true stops and colons are read
#   at 0.9 and above).
# - "dots": a word read with confidence below `DOTS_BELOW` that the lexicon does not know, where
#   exactly one reading that differs by the dots of one letter («ت»/«ث», «ر»/«ز», …) is known to
#   the lexicon and read elsewhere on the same page, is that reading («الثعاون» → «التعاون», with
#   «التّعاون» on the page). Without the page's witness, the lexicon alone turned proper names into
#   words («كروسبي» → «كروسيي», «تكريت» → «تكرين») and raised the error rate.
# - "latin": a word the Arabic model read as digits or symbols where the page has a Latin word is
#   the English model's reading of its box, when that is confident Latin letters (see `LATIN_TRUST`).
# - "pages": a paragraph that runs on over a page break is one paragraph (`runs_on`; the page's text
#   is joined to the next page's by a space, not a blank line).
# - "blocks": the same within a page, where tesseract's layout analysis starts a new block or
#   paragraph in the middle of one (often at a line that opens with a number or a Latin word).
# "pages" is on by default since 2026-12-06: on the benchmark's report half at 300 dpi it brings
# English R@1 from 0.851 to 0.894 (the text itself: 0.894) and, with the certified abstention bars
# (English 0.365), makes no false abstention the text does not (1/47 English, 3/72 Arabic, as the
# text); at 150 dpi R@1 0.792 / 0.872 with it (docs/measurements.md, "A paragraph cut by a page
# break"). With the hand-set English bar 0.40 it had made one more false abstention (a page break
# joined where OCR had dropped the paragraph's full stop). "blocks" stays off: it lost one question
# per language against "pages" alone, at both resolutions.
REPAIRS = ("marks", "closers", "hamza", "stops", "dots", "latin", "pages", "blocks")
DEFAULT_REPAIRS = ("marks", "closers", "hamza", "stops", "dots", "latin", "pages")
# Letters told apart only by their dots: a misread dot turns one into another of its group.
DOT_GROUPS = ("بتثني", "جحخ", "دذ", "رز", "سش", "صض", "طظ", "عغ", "فق")
_DOT_PEERS = {ch: group.replace(ch, "") for group in DOT_GROUPS for ch in group}
# Below this confidence (tesseract's, in [0, 1]) an unknown word may be re-read by its dots. Set on
# the benchmark's 300 dpi scans: see `REPAIRS`.
DOTS_BELOW = 0.90
_MARK_AFTER_CLOSER = re.compile(r"([\u0621-\u064a\u0671-\u06d3\d][\"'”’»)\]]+)([,;?])$")
_UNSURE_STOP = re.compile(r"(?<=[\u0621-\u064a\u0671-\u06d3\d\"'”’»)\]])[.:;\u061b]$")
STOP_BELOW = 0.75
_ARABIC_WORD = re.compile(r"^(\W*)([\u0621-\u064a\u0671-\u06d3\u064b-\u0652\u0640]+)(\W*)$")

# "latin": what the Arabic model makes of a Latin word. It has no Latin letters to read one with, so
# it reads «Dragobete» or «Tu B'Av» as digit runs, symbols or a few Arabic letters glued to digits,
# usually (not always) with low confidence, and at times as a number it is sure of («giri» as «8111»
# at 0.88). A word so read is a suspect (`latin_suspect`): it has a character that is neither an
# Arabic letter, mark or punctuation, and it is not a plausible number read with confidence at least
# `LATIN_SURE_NUMBER` (set above 1: none is skipped). Each suspect is read again by tesseract's
# English model on its own box (`read_latin`, all of a page's suspects in one call), and the English
# reading replaces it when it is Latin letters (`_LATIN_READ`) read with confidence at least
# `LATIN_TRUST`; a number, Cyrillic or CJK read by the English model is digits or symbols, or
# unsure, and stays as the Arabic model read it.
_ARABIC_OR_MARK = re.compile(
    r"[\u0621-\u064a\u0671-\u06d3\u064b-\u065f\u0670\u0640\u060c\u061b\u061f"
    r"«»\"'“”‘’()\[\].,:;!?\-–—/%\s]"
)
# A number as Arabic news prints it: groups of digits with separators, no leading zero, perhaps
# a year's «م»/«هـ», in brackets or quotes, with punctuation after («(1946),», «37,547,686», «2014م,»).
_PLAUSIBLE_NUMBER = re.compile(
    r"^[\"'“”«(\[]*(?:0|[1-9]\d{0,3})(?:[.,/:\-–]\d{1,4})*(?:م|هـ)?[\"'“”»)\]]*[.,:;،؛]*$"
)
# Latin letters with Latin-1 and Latin Extended-A/B accents («Traité», «Erdoğan»), not × or ÷; a
# mark read before the word (`_LEADING_MARK`) is the one that ends it, or ends its run of Latin
# words: in a right-to-left line it is printed on the run's left («.Noua» for «Noua.»).
_LATIN_LETTER = "A-Za-z\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u024f"
_LATIN_READ = re.compile(
    rf"^[.,:;]?[\"'“‘(\[]*[{_LATIN_LETTER}](?:[{_LATIN_LETTER}'’\-]*[{_LATIN_LETTER}])?[\"'”’)\]]*[.,:;!?]?$"
)
_LEADING_MARK = re.compile(r"^[.,:;](?=\S)")
# Both set on the dev articles the OCR benchmark does not report on (zlib.crc32(article) % 2 == 0),
# by the characters left to edit over the half at 300 and 150 dpi together, from tesseract's kept
# TSV (docs/measurements.md, "OCR repairs"): 838 + 925 with the other repairs. LATIN_SURE_NUMBER
# 0.7/0.8/0.9/1.01 gave 1671/1671/1672/1669 at LATIN_TRUST 0.5, and 1.01 was no worse at any
# LATIN_TRUST: no number is sure enough to skip (its English reading is digits, never taken), so
# every word with a character that is not Arabic is read again. At it, LATIN_TRUST
# 0.9/0.8/0.7/0.6/0.5 gave 1691/1683/1674/1670/1669; lower values (0.4: 1666, 0.3: 1663) gained only
# on Cyrillic words read as Latin look-alikes («CKHX» for «ских»), and the English model reads
# Arabic words as Latin junk at 0.0-0.25 («abagudl»), so a reading under 0.5 is not trusted.
LATIN_SURE_NUMBER = 1.01  # above any confidence: every number is read again
LATIN_TRUST = 0.50
# The crop around a suspect's box: this share of the box's height on every side; crops lower than
# `LATIN_MIN_HEIGHT` px are enlarged to it (tesseract reads text about 20-40 px high best).
LATIN_MARGIN = 0.25  # not tuned: set once, before the measurements
LATIN_MIN_HEIGHT = 40  # not tuned: a 12 pt word is about 35 px high at 300 dpi, 18 at 150

# "pages" and "blocks": a paragraph break in the OCR text (a page's end, or a new block or paragraph
# of tesseract's within a page) runs on, and is a space, when the text before it ends without a
# sentence-final mark (`_SENTENCE_END`: . ؟ ? ! : or …, perhaps with a closing quote or bracket, or a
# reference such as «[26]», after it), its last line reaches across at least `FULL_LINE` of the page's
# text column (a paragraph's last line is where it ends short, a heading is short too), and the text
# after it goes on as a sentence does (`_GOES_ON`: a letter or a digit, perhaps after an opening quote
# or bracket; not a bullet or a dash, which start a list item). Arabic has no capital letters, so
# whether the next page starts mid-sentence cannot be read from its first word: the line before the
# break is the witness. Set on the dev articles the OCR benchmark does not report on
# (zlib.crc32(article) % 2 == 0, tesseract's kept TSV at 300 and 150 dpi; docs/measurements.md, "OCR
# repairs"): of their 35 page and block breaks with no sentence-final mark before them, the 32 in
# the middle of a source paragraph had a last line at 0.92-1.00 of the column, the 3 at a source
# paragraph's end at 0.06, 0.06 and 0.46; 0.8 sits in that gap, leaving room for a long word that
# did not fit on the line.
FULL_LINE = 0.8
_SENTENCE_END = re.compile(r"[.!?:\u061f\u2026][\"'”’»)\]]*(?:\[\d+\])?$")
_GOES_ON = re.compile(r"^[\"'“‘«(\[]*\w")


def repair_names(setting: str) -> tuple[str, ...]:
    """The repairs `QA_OCR_REPAIRS` names (comma-separated); `InputError` naming any unknown one.

    Example: repair_names("marks, hamza") == ("marks", "hamza")
    """
    names = tuple(n.strip() for n in setting.split(",") if n.strip())
    unknown = [n for n in names if n not in REPAIRS]
    if unknown:
        raise InputError(
            f"QA_OCR_REPAIRS names {', '.join(unknown)}, which is not a repair; use some of {', '.join(REPAIRS)}."
        )
    return names


class Lexicon:
    """Arabic words a spelling dictionary knows: hunspell with Ayaspell's Arabic dictionary
    (Debian's `hunspell-ar`, GPL/LGPL/MPL), asked through its command line (`hunspell -d ar -l`
    prints the words it does not know), every answer remembered. Unavailable (`available()` False)
    when hunspell or the dictionary is not installed: the repairs that need it are then skipped.
    """

    def __init__(self, dictionary: str = "ar") -> None:
        self.dictionary = dictionary
        self._known: dict[str, bool] = {}
        self._lock = threading.Lock()
        self._available: bool | None = None

    def available(self) -> bool:
        """True when hunspell runs with the dictionary (checked once a process)."""
        if self._available is None:
            self._available = shutil.which("hunspell") is not None and self._ask(["كتاب"]) == set()
        return self._available

    def known(self, words: Iterable[str]) -> set[str]:
        """Those of `words` the dictionary knows (empty when it is unavailable)."""
        words = set(words)
        with self._lock:
            todo = sorted(w for w in words if w not in self._known)
        if todo and self.available():
            unknown = self._ask(todo)
            if unknown is not None:
                with self._lock:
                    self._known.update({w: w not in unknown for w in todo})
        with self._lock:
            return {w for w in words if self._known.get(w)}

    def _ask(self, words: list[str]) -> set[str] | None:
        """The words hunspell does not know, or None when it does not run."""
        try:
            done = subprocess.run(
                ["hunspell", "-d", self.dictionary, "-i", "utf-8", "-l"],
                input="\n".join(words) + "\n",
                capture_output=True,
                text=True,
                timeout=60,
            )
        except (OSError, subprocess.SubprocessError):
            return None
        if done.returncode != 0 or "Can't open" in done.stderr:
            return None
        return set(done.stdout.split())


LEXICON = Lexicon()


def repair(
    words: Sequence[str],
    confidences: Sequence[float],
    *,
    repairs: Sequence[str] = DEFAULT_REPAIRS,
    lexicon: Lexicon | None = LEXICON,
) -> list[str]:
    """The page's words (folded, in reading order) with `repairs` (see `REPAIRS`) made; confidences
    in [0, 1]. A word is replaced whole, so the text built from the result has exact offsets for it.

    Example: repair(["أطفالء", "والده"], [0.41, 0.92]) == ["أطفال،", "والده"] (with hunspell-ar)
    """
    out = list(words)
    if "marks" in repairs:
        out = [_LATIN_MARKS.sub(lambda m: _ARABIC_MARKS[m.group()], w) for w in out]
    if "closers" in repairs:  # a Latin mark after a closing quote or bracket of an Arabic word
        out = [_MARK_AFTER_CLOSER.sub(lambda m: m.group(1) + _ARABIC_MARKS[m.group(2)], w) for w in out]
    if "stops" in repairs:  # «،» read as ".", ":" or ";" in a word tesseract was unsure of
        out = [
            _UNSURE_STOP.sub("\u060c", w) if c < STOP_BELOW else w
            for w, c in zip(out, confidences, strict=True)
        ]
    if not {"hamza", "dots"} & set(repairs) or lexicon is None or not lexicon.available():
        return out
    parts = [_ARABIC_WORD.match(w) for w in out]
    candidates: dict[int, list[str]] = {}
    for i, m in enumerate(parts):
        if m is None:
            continue
        core, options = m.group(2), []
        if "hamza" in repairs and core.endswith("ء") and len(core) > 2 and not m.group(3):
            options.append(core[:-1])
        if "dots" in repairs and confidences[i] < DOTS_BELOW:
            options += [
                core[:j] + peer + core[j + 1 :]
                for j, ch in enumerate(core)
                for peer in _DOT_PEERS.get(ch, "")
            ]
        if options:
            candidates[i] = options
    if not candidates:
        return out
    # the page's own words: the second witness of a reading by the dots (the word read elsewhere)
    seen = {_bare(m.group(2)) for m in parts if m}
    known = lexicon.known(
        {parts[i].group(2) for i in candidates} | {o for v in candidates.values() for o in v}
    )
    for i, options in candidates.items():
        m = parts[i]
        core = m.group(2)
        if core in known:
            continue
        if "hamza" in repairs and core.endswith("ء") and core[:-1] in known and not m.group(3):
            out[i] = f"{m.group(1)}{core[:-1]}\u060c"
            continue
        dotted = [o for o in options if o in known and o != core[:-1] and _bare(o) in seen]
        if "dots" in repairs and len(dotted) == 1:
            out[i] = f"{m.group(1)}{dotted[0]}{m.group(3)}"
    return out


def _bare(word: str) -> str:
    """A word without its diacritics and tatweel (qa.text's pattern), to match readings of one word."""
    return qtext._DIACRITICS.sub("", word)


def latin_suspect(word: str, confidence: float) -> bool:
    """Whether the Arabic model's reading `word` (folded), read with `confidence` in [0, 1], may be a
    Latin word it could not read: a character that is not Arabic (letter, mark or punctuation), and
    not a plausible number read with confidence at least `LATIN_SURE_NUMBER` (see `REPAIRS`).

    Example: latin_suspect("11311150115215", 0.53) is True; latin_suspect("(1946),", 0.92) is False
    """
    if not _ARABIC_OR_MARK.sub("", word):
        return False
    return not (_PLAUSIBLE_NUMBER.match(word) and confidence >= LATIN_SURE_NUMBER)


def read_latin(image, boxes: Sequence[tuple[int, int, int, int]]) -> list[tuple[str, float]]:
    """Each box `(left, top, right, bottom)` (pixels) of the page `image` (Pillow) read by tesseract's
    English model: its text (the words of the box joined by spaces; "" when none) and its lowest word
    confidence in [0, 1].

    Every box is cropped with `LATIN_MARGIN` of its height around it, enlarged to at least
    `LATIN_MIN_HEIGHT` px high, and the crops are stacked one under another, a crop's height apart,
    into one image read in one call (`--psm 6`, a block of lines; a call a box took 0.2 s each); a word
    read belongs to the crop its vertical middle falls in, and is kept when its horizontal middle
    falls in the box itself, not in the margin (where it is a neighbour's glyphs: «Dragobete 9»» at
    150 dpi). The caller makes sure tesseract has `eng`.
    """
    # deferred: Pillow and pytesseract load with the first page to read
    import pytesseract
    from PIL import Image

    if not boxes:
        return []
    gray = image.convert("L")
    crops, inner = [], []  # the crops, and each word box's own columns [x0, x1) in its crop
    for left, top, right, bottom in boxes:
        pad = round(LATIN_MARGIN * max(bottom - top, 1))
        x = max(0, left - pad)
        crop = gray.crop((x, max(0, top - pad), right + pad, bottom + pad))
        scale = max(1.0, LATIN_MIN_HEIGHT / max(crop.height, 1))
        if scale > 1:
            crop = crop.resize(
                (max(1, round(crop.width * scale)), LATIN_MIN_HEIGHT), Image.Resampling.LANCZOS
            )
        crops.append(crop)
        inner.append(((left - x) * scale, (right - x) * scale))
    gap = max(c.height for c in crops)
    sheet = Image.new(
        "L", (max(c.width for c in crops) + 2 * gap, sum(c.height + gap for c in crops) + gap), 255
    )
    spans, y = [], gap
    for crop in crops:
        sheet.paste(crop, (gap, y))
        spans.append((y, y + crop.height))
        y += crop.height + gap
    data = pytesseract.image_to_data(sheet, lang="eng", config="--psm 6", output_type=pytesseract.Output.DICT)
    found: list[list[tuple[int, str, float]]] = [[] for _ in crops]
    for text, conf, left, top, width, height in zip(
        data["text"], data["conf"], data["left"], data["top"], data["width"], data["height"], strict=True
    ):
        text = str(text).strip()
        if not text or float(conf) < 0:
            continue
        middle, centre = int(top) + int(height) / 2, int(left) + int(width) / 2 - gap
        for k, (a, b) in enumerate(spans):
            if a <= middle < b:
                if inner[k][0] <= centre < inner[k][1]:  # not a neighbour's glyphs in the margin
                    found[k].append((int(left), text, float(conf) / 100))
                break
    return [
        (" ".join(t for _, t, _ in sorted(words)), min(c for _, _, c in words)) if words else ("", 0.0)
        for words in found
    ]


def _latin_rows(rows: Sequence[int], data: dict[str, list]) -> dict[int, tuple[str, float]]:
    """The rows (indexes into `data`) whose word the English model read as Latin letters with
    confidence at least `LATIN_TRUST` (`data["latin"]`, kept by `_read_page`): {row: (word, confidence)}."""
    kept = data.get("latin") or {}
    out = {}
    for i in rows:
        text, conf = kept.get(str(i), ("", 0.0))
        if conf >= LATIN_TRUST and text and all(_LATIN_READ.match(w) for w in text.split()):
            out[i] = (text, conf)
    return out


# ---------------------------------------------------------------------------------------------
# Paragraphs that a page break or tesseract's layout cut in two


Box = tuple[int, int, int, int]


def runs_on(before: str, line: Sequence[Box], column: tuple[int, int], after: str) -> bool:
    """Whether the paragraph break between the text `before` it and the text `after` it is in the middle
    of a paragraph (see `FULL_LINE`): `before` ends without a sentence-final mark, the boxes of its
    last `line` span at least `FULL_LINE` of the `column` (left, right: pixels) and `after` goes on as
    a sentence does.

    Example: runs_on("الشيكولاتة في", [(100, 0, 1900, 40)], (90, 1910), "عيد الحب") is True; with
    "الشيكولاتة." before, or a last line from 1500 to 1900, it is False.
    """
    if not line or _SENTENCE_END.search(before.rstrip()) or not _GOES_ON.match(after.lstrip()):
        return False
    width = column[1] - column[0]
    return width > 0 and max(b[2] for b in line) - min(b[0] for b in line) >= FULL_LINE * width


def _column(boxes: Iterable[Box]) -> tuple[int, int]:
    """The page's text column: the leftmost and rightmost pixel of its words' boxes."""
    boxes = list(boxes)
    return (min(b[0] for b in boxes), max(b[2] for b in boxes)) if boxes else (0, 0)


def _last_line(page: OcrPage) -> list[Box]:
    """The boxes of the page's last line: the words at its end on the last word's line, where one's
    vertical middle lies within the other's box (the page's words carry no line numbers)."""
    if not page.words:
        return []
    last = page.words[-1].box
    out = []
    for word in reversed(page.words):
        box = word.box
        if not (last[1] <= (box[1] + box[3]) / 2 <= last[3] or box[1] <= (last[1] + last[3]) / 2 <= box[3]):
            break
        out.append(box)
    return out


def page_break(before: tuple[str, OcrPage], after: tuple[str, OcrPage], repairs: Sequence[str]) -> str:
    """What joins the texts of two pages read one after the other, (text, OCR page) each: a space where
    "pages" is among `repairs` and the paragraph runs on over the break (`runs_on`), else a blank
    line (a paragraph break)."""
    (text, page), (next_text, _) = before, after
    if "pages" not in repairs:
        return "\n\n"
    line = _last_line(page)
    if len(line) == len(page.words):  # one line: no column to tell a full line from a heading's
        return "\n\n"
    return " " if runs_on(text, line, _column(w.box for w in page.words), next_text) else "\n\n"


def join_pages(
    pages: Sequence[tuple[int, str, OcrPage | None]], repairs: Sequence[str] = ()
) -> tuple[str, tuple[int, ...], tuple[OcrPage, ...]]:
    """A document's pages, (number, text, OCR page or None for a text layer's page) in order, joined
    into (text, page starts, OCR pages with document offsets): `page starts[i]` is the offset where
    page i + 1 begins (an empty page begins where the next one does). Pages are joined by a blank
    line, or by a space where two pages read by OCR one after the other hold one paragraph
    (`page_break`: the "pages" repair).
    """
    parts: list[str] = []
    starts: list[int] = []
    shifted: list[OcrPage] = []
    length, previous = 0, None  # the text's length so far; the page before: (number, text, OCR page)
    for number, text, page in pages:
        if not text:
            starts.append(length + (2 if parts else 0))  # the next page follows a blank line
            previous = None
            continue
        separator = ""
        if parts:
            together = (
                previous is not None
                and previous[2] is not None
                and page is not None
                and previous[0] == number - 1
            )
            separator = page_break(previous[1:], (text, page), repairs) if together else "\n\n"
        start = length + len(separator)
        starts.append(start)
        parts.append(separator + text)
        if page is not None:
            shifted.append(page.shifted(start))
        length, previous = start + len(text), (number, text, page)
    return "".join(parts), tuple(starts), tuple(shifted)


# ---------------------------------------------------------------------------------------------
# Text from tesseract's words


def _put_latin(
    rows: list[tuple[int, str]], confidences: dict[int, float], data: dict[str, list]
) -> tuple[list[tuple[int, str]], dict[int, float]]:
    """The page's (row, word) list with the English model's confident Latin readings in place
    (`_latin_rows`), each with its English confidence. Tesseract orders an Arabic line's words right
    to left, a run of Latin words too, so the words of a run of replaced words on one line are put
    back left to right («Tu B'Av», not «B'Av Tu»), each with its own box."""
    latin = _latin_rows([i for i, _ in rows], data)
    if not latin:
        return rows, confidences
    confidences = confidences | {i: c for i, (_, c) in latin.items()}
    rows = [(i, latin[i][0] if i in latin else w) for i, w in rows]

    def line(i: int) -> tuple:
        return (data["block_num"][i], data["par_num"][i], data["line_num"][i])

    out, k = [], 0
    while k < len(rows):
        j = k + 1
        if rows[k][0] in latin:
            while j < len(rows) and rows[j][0] in latin and line(rows[j][0]) == line(rows[k][0]):
                j += 1
        run = rows[k:j][::-1]
        first, word = run[0]
        if first in latin and _LEADING_MARK.match(word):  # «.Noua» is «Noua.»; «.cho-giri choko» too
            run[0] = (first, word[1:])
            last, end = run[-1]
            run[-1] = (last, end + word[0])
        out += run
        k = j
    return out, confidences


def page_text(
    data: dict[str, list],
    *,
    page: int,
    image: str,
    repairs: Sequence[str] = DEFAULT_REPAIRS,
    lexicon: Lexicon | None = LEXICON,
) -> tuple[str, OcrPage]:
    """The text of one page from pytesseract's `image_to_data` dict, and its words with offsets.

    The words are repaired first (`repair`: `repairs`, with `lexicon`; "latin" from the English
    readings `_read_page` kept in `data["latin"]`), each whole, so the offsets are those of the
    repaired words.

    `data` holds parallel lists (`block_num`, `par_num`, `line_num`, `text`, `conf`, `left`, `top`,
    `width`, `height`); the first row (level 1) is the page with its size in pixels. Offsets are
    `[start, end)` in the returned text; confidences are tesseract's 0–100 scaled to [0, 1].

    Example: words "في" and "موسكو" on one line give the text "في موسكو" with words at [0, 2), [3, 8).
    """
    width, height = int(data["width"][0]), int(data["height"][0])
    rows = [(i, qtext.fold_text(str(raw)).strip()) for i, raw in enumerate(data["text"])]
    rows = [(i, w) for i, w in rows if w]
    confidences = {i: max(0.0, float(data["conf"][i])) / 100 for i, _ in rows}
    if "latin" in repairs:
        rows, confidences = _put_latin(rows, confidences, data)
    repaired = repair(
        [w for _, w in rows], [confidences[i] for i, _ in rows], repairs=repairs, lexicon=lexicon
    )
    boxes, lines = {}, {}  # each row's box; each line's boxes, by (block, paragraph, line)
    for i, _ in rows:
        left, top = int(data["left"][i]), int(data["top"][i])
        boxes[i] = (left, top, left + int(data["width"][i]), top + int(data["height"][i]))
        lines.setdefault(_line_of(data, i), []).append(boxes[i])
    column = _column(boxes.values())
    out: list[str] = []
    words: list[OcrWord] = []
    last, start = None, 0  # the row before
    for (i, _), word in zip(rows, repaired, strict=True):
        if out:  # a line break inside a paragraph is a space: sentences run across lines
            same = _line_of(data, i)[:2] == _line_of(data, last)[:2]
            joined = same or (  # a page of one line has no column to judge its lines by
                "blocks" in repairs
                and len(lines) > 1
                and runs_on(out[-1], lines[_line_of(data, last)], column, word)
            )
            out.append(" " if joined else "\n\n")
            start += len(out[-1])
        last = i
        out.append(word)
        words.append(OcrWord(start, start + len(word), boxes[i], confidences[i]))
        start += len(word)
    return "".join(out), OcrPage(page, image, width, height, tuple(words))


def _line_of(data: dict[str, list], row: int) -> tuple:
    """The (block, paragraph, line) numbers tesseract gave the word in `row`."""
    return (data["block_num"][row], data["par_num"][row], data["line_num"][row])


# ---------------------------------------------------------------------------------------------
# The recogniser


class Recogniser:
    """Reads page images with tesseract, within bounds, keeping what it read under the file's hash.

    Raises `InputError` (one sentence) when tesseract or one of its languages is missing, and for an
    image that is damaged, over `max_pixels` pixels, or a file with more than `max_pages` pages.
    """

    def __init__(
        self,
        root: Path,
        *,
        languages: str = "ara",
        dpi: int = 300,
        max_pages: int = 50,
        max_pixels: int = 40_000_000,
        repairs: Sequence[str] = DEFAULT_REPAIRS,
        progress: bool = True,
    ) -> None:
        self.root = Path(root).expanduser()
        self.repairs = tuple(repairs)
        self.languages = languages
        self.dpi = dpi
        self.max_pages = max_pages
        self.max_pixels = max_pixels
        self.progress = progress

    @classmethod
    def from_settings(cls, settings: Settings, *, progress: bool = True) -> Recogniser | None:
        """The recogniser the settings ask for, or None when OCR is off (`QA_OCR=false`)."""
        if not settings.ocr:
            return None
        return cls(
            settings.ocr_path,
            languages=settings.ocr_languages,
            dpi=settings.ocr_dpi,
            max_pages=settings.ocr_max_pages,
            max_pixels=settings.ocr_max_pixels,
            repairs=repair_names(settings.ocr_repairs),
            progress=progress,
        )

    def check(self, name: str) -> None:
        """`InputError` naming file `name` unless tesseract and every language in `languages` are installed."""
        _check_tesseract(self.languages, name)

    # -- images ------------------------------------------------------------------------------

    def read_image(self, data: bytes, name: str) -> tuple[str, tuple[int, ...], tuple[OcrPage, ...]]:
        """An image file (one page, or a TIFF's pages) read into (text, page starts, OCR pages).

        Pages are joined by blank lines (by a space where a paragraph runs on: `join_pages`); `page
        starts[i]` is the offset of page i + 1. Raises
        `InputError` for a damaged or oversized image, too many pages, or no text found.
        """
        # deferred: Pillow loads with the first image
        from PIL import Image, ImageOps, UnidentifiedImageError

        too_big = (
            f"{name} is {{size}} pixels, over the limit of {self.max_pixels / 1e6:g} million a page "
            "(QA_OCR_MAX_PIXELS); it is refused as possibly hostile."
        )
        try:
            image = Image.open(io.BytesIO(data))  # reads the header only
            frames = getattr(image, "n_frames", 1)
        except Image.DecompressionBombError:  # Pillow's own bound (about 179 million pixels) is higher
            raise InputError(too_big.format(size="over 179 million")) from None
        except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
            raise InputError(f"{name} is not a readable image ({_reason(exc)}).") from None
        if frames > self.max_pages:
            raise InputError(
                f"{name} has {frames} pages, over the limit of {self.max_pages} (QA_OCR_MAX_PAGES)."
            )
        for index in range(frames):  # every page's size from its header, before any is decoded
            image.seek(index)
            width, height = image.size
            if width * height > self.max_pixels:
                raise InputError(too_big.format(size=f"{width} × {height}"))

        def render(index: int):
            try:
                image.seek(index)
                page = ImageOps.exif_transpose(image)  # a phone's photo, upright
                if page.mode in ("RGBA", "LA", "PA") or "transparency" in page.info:
                    # transparent pixels on white, as on paper (converted alone they turn black)
                    rgba = page.convert("RGBA")
                    page = Image.alpha_composite(Image.new("RGBA", rgba.size, "white"), rgba)
                if page.mode not in ("L", "RGB"):
                    page = page.convert("RGB")
                page.load()
                return page
            except (OSError, ValueError, SyntaxError) as exc:  # truncated or damaged image data
                raise InputError(f"{name} is a damaged image ({_reason(exc)}).") from None

        pages = [(i + 1, functools.partial(render, i)) for i in range(frames)]
        return _join(self._recognise(self._key(data), name, pages), name, self.repairs)

    # -- PDF pages ------------------------------------------------------------------------------

    def read_pdf_pages(
        self, data: bytes, numbers: Sequence[int], name: str
    ) -> dict[int, tuple[str, OcrPage]]:
        """PDF pages (1-based `numbers`) rendered and read: {page: (its text, its OCR page)}, offsets in
        the page's own text.

        Each page is rendered at `dpi`, or lower where that would pass `max_pixels`. Raises
        `InputError` for more than `max_pages` pages to read or a PDF pdfium cannot open.
        """
        if not numbers:
            return {}
        if len(numbers) > self.max_pages:
            raise InputError(
                f"{name} has {len(numbers)} pages without text to recognise, over the limit of "
                f"{self.max_pages} (QA_OCR_MAX_PAGES)."
            )
        # deferred: pdfium loads with the first PDF that needs OCR
        import pypdfium2 as pdfium

        try:
            pdf = pdfium.PdfDocument(data)
        except pdfium.PdfiumError as exc:
            raise InputError(f"{name} is not a readable PDF ({exc}).") from None

        def render(number: int):
            page = pdf[number - 1]
            width, height = page.get_size()  # points (1/72 inch)
            scale = min(self.dpi / 72, (self.max_pixels / max(width * height, 1.0)) ** 0.5)
            return page.render(scale=scale, grayscale=True).to_pil()

        key = self._key(data)
        try:
            pages = self._recognise(key, name, [(n, functools.partial(render, n)) for n in numbers])
        finally:
            pdf.close()
        return {page.page: (text, page) for text, page in pages}

    # -- shared ---------------------------------------------------------------------------------

    def _key(self, data: bytes) -> str:
        settings = f"{self.languages}|{self.dpi}|{self.max_pixels}|{FORMAT_VERSION}"
        return hashlib.sha256(hashlib.sha256(data).digest() + settings.encode()).hexdigest()[:32]

    def _recognise(
        self, key: str, name: str, pages: list[tuple[int, Callable[[], object]]]
    ) -> list[tuple[str, OcrPage]]:
        """Each (page number, image maker) read, or taken from what was kept under `key`."""
        folder = self.root / "pages" / key
        out, todo = [], []
        for number, make in pages:
            kept = _load_page(folder, number, self.repairs)
            if kept is None:
                todo.append((number, make))
            out.append(kept)
        done: dict[int, tuple[str, OcrPage]] = {}
        if todo:
            self.check(name)
            folder.mkdir(parents=True, exist_ok=True)
            bar = tqdm(total=len(todo), desc=f"OCR {name}", unit="page", disable=not self.progress)
            # Pages are made here, one at a time (pdfium is not thread-safe), and read two at a time.
            with _one_thread_tesseract(), ThreadPoolExecutor(PARALLEL_PAGES) as pool, bar:
                pending: deque[tuple[int, Future]] = deque()

                def collect() -> None:
                    number, future = pending.popleft()
                    done[number] = future.result()
                    bar.update()

                for number, make in todo:  # at most PARALLEL_PAGES page images in memory
                    pending.append(
                        (
                            number,
                            pool.submit(
                                _read_page, make(), folder, number, self.languages, name, self.repairs
                            ),
                        )
                    )
                    if len(pending) == PARALLEL_PAGES:
                        collect()
                while pending:
                    collect()
        return [kept if kept is not None else done[n] for (n, _), kept in zip(pages, out, strict=True)]


_ENV_LOCK = threading.Lock()
_ENV_USERS = 0
_ENV_SAVED: str | None = None


@contextlib.contextmanager
def _one_thread_tesseract() -> Iterator[None]:
    """OMP_THREAD_LIMIT=1 in the environment pytesseract hands to tesseract, while pages are read.

    pytesseract passes `os.environ` to the program and takes no environment of its own; the value is
    restored when the last reader is done. Libraries already loaded in this process have read their
    OpenMP settings at start-up and are not affected.
    """
    global _ENV_USERS, _ENV_SAVED
    with _ENV_LOCK:
        if _ENV_USERS == 0:
            _ENV_SAVED = os.environ.get("OMP_THREAD_LIMIT")
            os.environ["OMP_THREAD_LIMIT"] = TESSERACT_THREADS
        _ENV_USERS += 1
    try:
        yield
    finally:
        with _ENV_LOCK:
            _ENV_USERS -= 1
            if _ENV_USERS == 0 and _ENV_SAVED is None:
                os.environ.pop("OMP_THREAD_LIMIT", None)
            elif _ENV_USERS == 0:
                os.environ["OMP_THREAD_LIMIT"] = _ENV_SAVED


def _join(
    pages: list[tuple[str, OcrPage]], name: str, repairs: Sequence[str]
) -> tuple[str, tuple[int, ...], tuple[OcrPage, ...]]:
    text, starts, shifted = join_pages([(p.page, t, p) for t, p in pages], repairs)
    if not text:
        raise InputError(f"{name}: no text was recognised in it.")
    return text, starts, shifted


def _reason(exc: BaseException) -> str:
    return str(exc).rstrip(".") or type(exc).__name__


_TESSERACT_OK: set[str] = set()  # language sets found installed: checked once a process


def _check_tesseract(languages: str, name: str) -> None:
    """`InputError` unless tesseract runs and has every model in `languages`; a missing one is looked
    for again on the next file (it may have been installed meanwhile)."""
    if languages in _TESSERACT_OK:
        return
    if shutil.which("tesseract") is None:
        raise InputError(f"{name} needs OCR, and tesseract is not installed: {INSTALL_HINT}.")
    try:
        listed = subprocess.run(["tesseract", "--list-langs"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError) as exc:
        raise InputError(f"{name} needs OCR, and tesseract does not run ({_reason(exc)}).") from None
    have = set(listed.stdout.split())
    missing = [lang for lang in languages.split("+") if lang not in have]
    if missing:
        raise InputError(
            f"{name} needs OCR, and tesseract lacks its {', '.join(missing)} model: {INSTALL_HINT}."
        )
    _TESSERACT_OK.add(languages)


# What tesseract read of a page, kept as it read it (the repairs are made again on every load, so a
# change of `repairs` needs no new recognition).
_RAW_KEYS = ("level", "block_num", "par_num", "line_num", "text", "conf", "left", "top", "width", "height")


def _read_page(
    image, folder: Path, number: int, languages: str, name: str, repairs: Sequence[str] = DEFAULT_REPAIRS
) -> tuple[str, OcrPage]:
    """One page image read by tesseract; what it read and a downscaled copy for display kept in
    `folder`; the page's text with `repairs` made."""
    # deferred: pytesseract loads with the first page to read
    import pytesseract

    try:
        data = pytesseract.image_to_data(image, lang=languages, output_type=pytesseract.Output.DICT)
    except (pytesseract.TesseractError, OSError, RuntimeError) as exc:
        raise InputError(f"{name}: tesseract could not read page {number} ({_reason(exc)}).") from None
    display = folder / f"page-{number}.png"
    shown = image.convert("L")
    if shown.width > DISPLAY_WIDTH:
        shown = shown.resize((DISPLAY_WIDTH, round(shown.height * DISPLAY_WIDTH / shown.width)))
    _write_atomic(display, lambda f: shown.save(f, format="PNG", optimize=True))
    raw = {k: [str(v) if k == "text" else v for v in data[k]] for k in _RAW_KEYS}
    if "latin" in repairs:  # with the trigger they were asked for by, so that a new one reads again
        raw["latin"] = _english_readings(image, raw) if _has_model("eng") else None
        raw["latin_sure"] = LATIN_SURE_NUMBER
    _write_atomic(
        folder / f"page-{number}.json",
        lambda f: f.write(json.dumps({"tesseract": raw}, ensure_ascii=False).encode()),
    )
    return page_text(raw, page=number, image=str(display), repairs=repairs)


def _english_readings(image, raw: dict[str, list]) -> dict[str, tuple[str, float]]:
    """The English model's reading of each word of the page the Arabic model read as a possible Latin
    word (`latin_suspect`): {row index as text: (reading, confidence in [0, 1])}, kept beside what
    tesseract read so that `page_text` can make the "latin" repair on every load."""
    rows, words = [], []
    for i, (text, conf) in enumerate(zip(raw["text"], raw["conf"], strict=True)):
        word = qtext.fold_text(str(text)).strip()
        if word:
            words.append(i)
            if latin_suspect(word, max(0.0, float(conf)) / 100):
                rows.append(i)

    def box(i: int) -> tuple[int, int, int, int]:
        left, top = int(raw["left"][i]), int(raw["top"][i])
        return left, top, left + int(raw["width"][i]), top + int(raw["height"][i])

    def line(i: int) -> tuple:
        return raw["block_num"][i], raw["par_num"][i], raw["line_num"][i]

    boxes = []
    for i in rows:  # the Arabic model's box may take in a neighbour («هو» beside «Dragobete»): trimmed
        left, top, right, bottom = box(i)
        for j in words:
            if j == i or line(j) != line(i):
                continue
            a, _, b, _ = box(j)
            if a < right and b > left and not (a <= left and b >= right):
                if a > left:
                    right = min(right, a)
                else:
                    left = max(left, b)
        boxes.append((left, top, max(right, left + 1), bottom))
    return {
        str(i): (text, round(conf, 3)) for i, (text, conf) in zip(rows, read_latin(image, boxes), strict=True)
    }


_MODELS: set[str] = set()  # tesseract models found installed (a missing one is looked for again)


def _has_model(language: str) -> bool:
    """Whether tesseract has the model for `language` (e.g. "eng")."""
    if language not in _MODELS:
        try:
            listed = subprocess.run(["tesseract", "--list-langs"], capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.SubprocessError):
            return False
        _MODELS.update(listed.stdout.split())
    return language in _MODELS


def _load_page(
    folder: Path, number: int, repairs: Sequence[str] = DEFAULT_REPAIRS
) -> tuple[str, OcrPage] | None:
    path, image = folder / f"page-{number}.json", folder / f"page-{number}.png"
    if not path.is_file() or not image.is_file():
        return None
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))["tesseract"]
        if "latin" in repairs and ("latin" not in raw or raw.get("latin_sure") != LATIN_SURE_NUMBER):
            return None  # read before these English readings were asked for: read again
        return page_text(raw, page=number, image=str(image), repairs=repairs)
    except (OSError, ValueError, KeyError, IndexError, TypeError):
        return None  # a damaged record is read again


def _write_atomic(path: Path, write: Callable[[io.BufferedWriter], object]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        write(f)
    tmp.replace(path)


# ---------------------------------------------------------------------------------------------
# Indexed documents' words, and what a citation gets from them


class OcrStore:
    """The recognised words of indexed documents, one JSON file per text hash under `root/docs/`."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root).expanduser()
        self._cache: dict[str, tuple[OcrPage, ...]] = {}

    def _path(self, sha: str) -> Path:
        return self.root / "docs" / f"{sha}.json"

    def save(self, sha: str, pages: Iterable[OcrPage]) -> None:
        """Keep a document's OCR pages (document offsets) under its text hash `sha`."""
        pages = tuple(pages)
        if not pages:
            return
        rows = [
            {
                "page": p.page,
                "image": p.image,
                "width": p.width,
                "height": p.height,
                "words": [[w.start, w.end, *w.box, w.confidence] for w in p.words],
            }
            for p in pages
        ]
        path = self._path(sha)
        path.parent.mkdir(parents=True, exist_ok=True)
        _write_atomic(path, lambda f: f.write(json.dumps(rows, ensure_ascii=False).encode()))
        self._cache[sha] = pages

    def pages(self, sha: str | None) -> tuple[OcrPage, ...]:
        """The OCR pages of the document with text hash `sha` (empty: not a scan, or unknown)."""
        if not sha:
            return ()
        if sha not in self._cache:
            try:
                rows = json.loads(self._path(sha).read_text(encoding="utf-8"))
                self._cache[sha] = tuple(
                    OcrPage(
                        r["page"],
                        r["image"],
                        r["width"],
                        r["height"],
                        tuple(OcrWord(w[0], w[1], tuple(w[2:6]), w[6]) for w in r["words"]),
                    )
                    for r in rows
                )
            except FileNotFoundError:
                self._cache[sha] = ()  # a document with a text layer: asked on every answer
            except (OSError, ValueError, KeyError, IndexError, TypeError):
                return ()  # damaged: the citation is shown without its boxes
        return self._cache[sha]

    def forget(self, sha: str | None) -> None:
        """Drop a removed document's words (its page images stay with the file's kept recognition)."""
        if sha:
            self._cache.pop(sha, None)
            self._path(sha).unlink(missing_ok=True)


def recognition(pages: Sequence[OcrPage], start: int, end: int, text: str) -> Recognition | None:
    """How `text`, the document's `[start, end)`, was recognised: its page, its words' boxes and
    confidences; None when no recognised word lies in it (a text-layer page, or not a scan)."""
    for page in pages:
        words = [w for w in page.words if w.start < end and w.end > start]
        if not words:
            continue
        low = min(words, key=lambda w: w.confidence)
        low_text = text[max(low.start, start) - start : min(low.end, end) - start]
        return Recognition(
            page=page.page,
            image=page.image,
            width=page.width,
            height=page.height,
            boxes=tuple(w.box for w in words),
            confidence=sum(w.confidence for w in words) / len(words),
            lowest=low.confidence,
            lowest_word=low_text,
        )
    return None


def annotate(answer: Answer, pages_of: Callable[[str], Sequence[OcrPage]]) -> Answer:
    """The answer with a `Recognition` on each citation read from a scan, and a note saying so.

    `pages_of(doc_id)` gives a document's OCR pages (empty for a document with a text layer). The
    note names the cited words' mean confidence and the least sure word, because an OCR error can
    change a name or a number.
    """

    def mark(c: Citation) -> Citation:
        pages = pages_of(c.doc)
        if not pages:
            return c
        found = recognition(pages, c.start, c.end, c.quote)
        # its page: that of its first word (a chunk may run on over a page: the "pages" repair)
        return c if found is None else replace(c, recognition=found, page=found.page)

    citations = tuple(mark(c) for c in answer.citations)
    closest = tuple(mark(c) for c in answer.closest)
    if citations == answer.citations and closest == answer.closest:
        return answer
    note = ocr_note([c for c in citations or closest if c.recognition is not None])
    joined = f"{answer.note} {note}" if answer.note and note else (answer.note or note)
    return replace(answer, citations=citations, closest=closest, note=joined)


def ocr_note(cited: Sequence[Citation]) -> str | None:
    """One sentence for citations read by OCR: their pages, the mean word confidence, the least sure word.

    Example: "[1] was read by OCR from a scanned page (p. 1): the recogniser was 91% sure of its
    words on average, 62% of «لافروف»; an OCR error can change a name or a number, so check the
    sentence on the page image in Sources."
    """
    cited = [c for c in cited if c.recognition is not None]
    if not cited:
        return None
    refs = " and ".join(f"[{c.n}]" for c in cited) if len(cited) <= 3 else f"{len(cited)} citations"
    pages = sorted({c.recognition.page for c in cited})
    where = f"p. {pages[0]}" if len(pages) == 1 else "pp. " + ", ".join(map(str, pages))
    total = sum(len(c.recognition.boxes) for c in cited)
    mean = sum(c.recognition.confidence * len(c.recognition.boxes) for c in cited) / max(total, 1)
    low = min(cited, key=lambda c: c.recognition.lowest).recognition
    verb = "was" if len(cited) == 1 else "were"
    least = f", {low.lowest:.0%} of «{low.lowest_word}», its least sure" if low.lowest_word else ""
    return (
        f"{refs} {verb} read by OCR from a scanned page ({where}): the recogniser was {mean:.0%} sure of "
        f"the words on average{least}; an OCR error can change a name or a number, so check the "
        "sentence on the page image in Sources."
    )


# ---------------------------------------------------------------------------------------------
# The page image with a sentence boxed


@functools.lru_cache(maxsize=64)
def highlight(found: Recognition, *, context_lines: float = 1.5, max_width: int = 900) -> bytes | None:
    """The region of the page image around a recognised sentence, its words boxed: PNG bytes.

    The region spans the sentence's lines and `context_lines` line heights above and below, across
    the words' full width with a margin; at most `max_width` px wide. None when the page image is
    missing or unreadable.
    """
    # deferred: Pillow loads with the first scanned citation shown
    from PIL import Image, ImageDraw

    try:
        page = Image.open(found.image).convert("RGB")
    except (OSError, ValueError):
        return None
    sx, sy = page.width / found.width, page.height / found.height
    boxes = [(round(a * sx), round(b * sy), round(c * sx), round(d * sy)) for a, b, c, d in found.boxes]
    line = max(1, sorted(b[3] - b[1] for b in boxes)[len(boxes) // 2])
    pad = round(context_lines * line)
    left = max(0, min(b[0] for b in boxes) - pad)
    right = min(page.width, max(b[2] for b in boxes) + pad)
    top = max(0, min(b[1] for b in boxes) - pad)
    bottom = min(page.height, max(b[3] for b in boxes) + pad)
    overlay = Image.new("RGBA", page.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(overlay)
    for a, b, c, d in boxes:
        draw.rectangle(
            (a - 2, b - 2, c + 2, d + 2), fill=(255, 214, 0, 80), outline=(214, 120, 0, 255), width=2
        )
    region = (
        Image.alpha_composite(page.convert("RGBA"), overlay).crop((left, top, right, bottom)).convert("RGB")
    )
    if region.width > max_width:
        region = region.resize((max_width, max(1, round(region.height * max_width / region.width))))
    buffer = io.BytesIO()
    region.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()
