"""Rendering for the web UI: typed turns and answers in, inert HTML and conversation exports out.

A conversation is a list of `Turn`s (question, then the `qa.answer.Answer` or an error; `partial`
holds the text streamed so far, `draft` marks an answer shown before the final one). From them this
module makes the chat bubbles (with the short answer, `qa.types.ShortAnswer`, above the quote, and
the list items a cited sentence announces a line each under it), the
sources panel (each cited sentence highlighted with <mark> inside its passage, its items under it, and the short answer's
words with a nested <mark class="qa-span">, all by offsets; under it, on request, its checked machine
translation, `qa.translate.Translation`), the documents table and each document's overview (its
central sentences, `qa.overview.central_sentences`), the page's CSS, and the Markdown and JSON
exports. Every piece of user or document text is
HTML-escaped here, and nothing is run through Markdown, so a document is always shown as text,
never run. Each message, quote and passage takes its direction from the script most of its words are
written in (`qa.text.text_direction`, set as `dir`, not the first letter dir="auto" goes by), and
embedded runs are isolated (<bdi>, unicode-bidi: isolate). Only the markers an answer placed become
[n] badges: a cited quote is found by its exact text, so a `[1]` inside it (a Markdown reference
line, a footnote mark) stays text even when the quote contains « or ».

Example:
    answer_html(Turn("t1", "What did the Kremlin deny?", answer))

Leaves out: Gradio (web/app.py builds the components and wires the events), answer wording (qa/)
and the feedback line (eval/questions.py: it is a question-set record).
"""

from __future__ import annotations

import base64
import html
import json
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from qa import ocr as qocr
from qa import text as qtext
from qa import wordcheck
from qa.answer import Answer, Citation
from qa.conversations import answer_record
from qa.extractive import translation_targets

if TYPE_CHECKING:
    from qa.conversations import Conversation
    from qa.retrieve import Evidence
    from qa.store import DocInfo
    from qa.translate import Translation
    from qa.types import ShortAnswer

CONTEXT_CHARS = 260  # passage context shown on each side of a cited sentence
QUOTE_BLOCK_CHARS = 80  # quotes longer than this sit on their own lines in an answer

WORDS = {
    "en": {
        "sources": "Sources",
        "para": "paragraph",
        "score": "score",
        "abstain": "Not in the documents",
        "closest": "Closest passage (not an answer)",
        "error": "Could not answer",
        "short": "Short answer",
        "short_span": "the document's own words",
        "short_rendered": "machine rendering of the cited words",
        "short_checked": "Checked",
        "short_not_checked": "Not checked",
        "short_unchecked": "the cited words as written",
        "working": "Finding the short answer…",
        "draft": "Not yet an answer: the closest sentences, still being read and checked (this may end as "
        "“not in the documents”).",
        "translate": "Translate cited sentences",
        "translated": "Machine translation, checked word by word against the sentence",
        "rough": "Rough machine translation, not checked",
        "unsupported": "No word of the source says this",
        "not_rendered": "Not rendered",
        "gloss": "Word by word (dictionary glosses and names in Latin letters; not a translation)",
        "untranslated": "No translation shown",
        "unchecked": "the translation could not be checked",
        "translating": "Translating {n} cited sentence(s) with the language model (about 5–10 s each the "
        "first time; kept, so asking again is instant)…",
    },
    "ar": {
        "sources": "المصادر",
        "para": "الفقرة",
        "score": "الدرجة",
        "abstain": "غير موجود في الوثائق",
        "closest": "أقرب مقطع (ليس جواباً)",
        "error": "تعذّرت الإجابة",
        "short": "جواب مختصر",
        "short_span": "مأخوذ حرفياً من النص",
        "short_rendered": "صياغة آلية للكلمات المقتبسة",
        "short_checked": "موثَّق",
        "short_not_checked": "غير موثَّق",
        "short_unchecked": "الكلمات المقتبسة كما وردت",
        "working": "جارٍ البحث عن الجواب المختصر…",
        "draft": "ليس جواباً بعد: أقرب الجمل، قيد القراءة والتحقق (وقد ينتهي إلى «غير موجود في الوثائق»).",
        "translate": "ترجمة الجمل المقتبسة",
        "translated": "ترجمة آلية، مطابَقة مع الجملة",
        "rough": "Rough machine translation, not checked",
        "unsupported": "No word of the source says this",
        "not_rendered": "Not rendered",
        "gloss": "Word by word (dictionary glosses and names in Latin letters; not a translation)",
        "untranslated": "لم تُعرض ترجمة",
        "unchecked": "تعذّر التحقق من الترجمة",
        "translating": "جارٍ ترجمة {n} من الجمل المقتبسة بالنموذج اللغوي (نحو 5–10 ثوانٍ لكل جملة في المرة "
        "الأولى؛ تُحفظ الترجمة فتعود فوراً بعدها)…",
    },
}

OVERVIEW_CAPTION = "Its most central sentences, in its own words and in document order:"

HEADER_HTML = (
    "<h1>Ask the documents</h1><p>Answers quote the indexed documents word for word, in English "
    "or Arabic. Each <span class='qa-ref'>[n]</span> points to a sentence you can check under "
    "Sources.</p>"
)

CSS = """
.qa-msg { unicode-bidi: isolate; text-align: start; line-height: 1.6; }
.qa-user { font-weight: 500; }
.qa-quote { margin: .3em 0 .5em; padding: .05em .75em; text-align: start; unicode-bidi: isolate;
  border-inline-start: 3px solid var(--color-accent-soft); }
.qa-ref { display: inline-block; font-size: .78em; font-weight: 700; line-height: 1; padding: .15em .35em;
  margin-inline-start: .15em; border-radius: .35em; vertical-align: .15em; unicode-bidi: isolate;
  background: var(--color-accent-soft); color: var(--color-accent); }
.qa-meta { margin-top: .5em; font-size: .82em; color: var(--body-text-color-subdued); }
.qa-note { margin-top: .4em; font-size: .82em; font-style: italic; color: var(--body-text-color-subdued); }
.qa-abstain { border-inline-start: 4px solid #d97706; padding: .1em .7em; }
.qa-abstain-title { font-weight: 700; color: #b45309; margin-bottom: .2em; }
.qa-closest { margin-top: .5em; font-size: .88em; color: var(--body-text-color-subdued); }
.qa-error { border-inline-start: 4px solid #dc2626; padding: .1em .7em; }
.qa-error-title { font-weight: 700; color: #b91c1c; }
.qa-streaming { opacity: .75; }
.qa-working { margin-top: .4em; font-size: .82em; color: var(--body-text-color-subdued); }
.qa-draft-title { margin-bottom: .3em; font-size: .82em; font-style: italic; color: var(--body-text-color-subdued); }
.qa-short { margin: .1em 0 .45em; }
.qa-short-caption { font-size: .78em; color: var(--body-text-color-subdued); }
.qa-short-check { font-size: .78em; margin-top: .2em; }
.qa-short-check.qa-checked { color: #1a7f37; }
.qa-short-check.qa-not-checked { color: var(--body-text-color-subdued); }
.qa-short-text { font-size: 1.12em; font-weight: 600; }
.qa-short .qa-note { margin-top: .15em; }
.qa-translation { margin-top: .45em; padding: .3em .6em; border-radius: .4em;
  border-inline-start: 3px solid var(--color-accent-soft); background: var(--background-fill-primary); }
.qa-translation-label { font-size: .78em; color: var(--body-text-color-subdued); }
.qa-translation-text { margin: .1em 0 0; unicode-bidi: isolate; line-height: 1.6; }
.qa-translation-none { font-size: .82em; font-style: italic; color: var(--body-text-color-subdued); }
.qa-overview-caption { font-size: .82em; color: var(--body-text-color-subdued); margin-bottom: .3em; }
.qa-overview-list { margin: 0; padding-inline-start: 1.4em; display: flex; flex-direction: column; gap: .35em; }
.qa-overview-list li { unicode-bidi: isolate; text-align: start; line-height: 1.7; }
mark.qa-cited { background: #fef3c7; color: inherit; padding: 0 .1em; border-radius: .2em; }
mark.qa-span, .qa-passage mark mark.qa-span { background: #f59e0b; color: #111827; font-weight: 600;
  padding: 0 .1em; border-radius: .2em; }
.qa-sources { display: flex; flex-direction: column; gap: .75em; }
.qa-src { border: 1px solid var(--border-color-primary); border-radius: .6em; padding: .6em .8em;
  background: var(--background-fill-secondary); }
.qa-src.qa-src-closest { border-style: dashed; opacity: .9; }
.qa-src-head { display: flex; flex-wrap: wrap; gap: .4em; align-items: baseline; font-size: .85em;
  color: var(--body-text-color-subdued); margin-bottom: .35em; }
.qa-src-doc { font-weight: 600; color: var(--body-text-color); overflow-wrap: anywhere; }
.qa-passage { unicode-bidi: isolate; text-align: start; line-height: 1.75; margin: 0; }
.qa-item { margin-top: 0; margin-inline-start: 1.25em; }
.qa-items { list-style: none; margin: .25em 0 0; padding-inline-start: 1em; line-height: 1.75; }
.qa-items mark { background: #fde68a; color: #1f2937; padding: .05em .15em; border-radius: .25em; }
.qa-passage mark { background: #fde68a; color: #1f2937; padding: .05em .15em; border-radius: .25em; }
.qa-scan { margin: .5em 0 0; }
.qa-scan img { max-width: 100%; height: auto; border: 1px solid var(--border-color-primary); border-radius: .3em;
  background: #fff; }
.qa-scan figcaption { font-size: .78em; color: var(--body-text-color-subdued); margin-top: .2em; }
.qa-status { font-size: .9em; padding: .2em 0; overflow-wrap: anywhere; }
.qa-empty { color: var(--body-text-color-subdued); font-size: .9em; }
.qa-section-title { font-weight: 600; font-size: .9em; margin: .2em 0 .1em; }
.qa-docs { width: 100%; border-collapse: collapse; font-size: .88em; border: none !important; }
.qa-docs td, .qa-docs th { padding: .35em .5em !important; border: none !important; text-align: start;
  border-bottom: 1px solid var(--border-color-primary) !important; background: none !important; }
.qa-docs th { font-weight: 600; color: var(--body-text-color-subdued); }
.qa-docs td.num { text-align: end; font-variant-numeric: tabular-nums; }
.qa-examples { gap: .4em !important; align-items: center; }
.qa-examples > button { flex: 0 1 auto !important; min-width: 0 !important; width: auto !important;
  border-radius: 999px !important; font-weight: 400 !important; padding: .3em .9em !important; }
.qa-rough { border-inline-start-color: #d97706; }
.qa-rough-label { font-size: .78em; font-weight: 600; color: #b45309; }
.qa-rough-why { font-size: .78em; font-style: italic; color: var(--body-text-color-subdued); }
.qa-unsupported { text-decoration: underline wavy #dc2626; text-underline-offset: .2em; cursor: help;
  background: #fee2e2; color: #7f1d1d; border-radius: .2em; position: relative; }
.qa-unsupported:focus::after, .qa-unsupported:hover::after { content: attr(data-why); position: absolute;
  inset-inline-start: 0; top: 1.6em; z-index: 5; white-space: nowrap; font-size: .75em; padding: .15em .4em;
  border-radius: .3em; background: #7f1d1d; color: #fff; }
.qa-gloss { margin-top: .45em; }
.qa-gloss-label { font-size: .78em; color: var(--body-text-color-subdued); margin-bottom: .2em; }
.qa-gloss-words { display: flex; flex-wrap: wrap; gap: .25em .5em; direction: rtl; }
.qa-gw { display: inline-flex; flex-direction: column; align-items: center; padding: .1em .25em;
  border-radius: .3em; }
.qa-gw-ar { font-size: 1.02em; unicode-bidi: isolate; }
.qa-gw-en { font-size: .72em; direction: ltr; unicode-bidi: isolate; color: var(--body-text-color-subdued);
  max-width: 9em; text-align: center; }
.qa-gw-name .qa-gw-en { font-style: italic; color: var(--color-accent); }
.qa-gw-none .qa-gw-en { opacity: .6; }
.qa-gw-span { background: #f59e0b33; outline: 1px solid #f59e0b; }
#qa-header h1 { margin-bottom: 0; }
#qa-header p { margin-top: .2em; color: var(--body-text-color-subdued); }
"""


@dataclass(frozen=True)
class Turn:
    """One exchange: the question and, once finished, its `Answer` or an error message.

    While an answer streams, `answer` is None or a draft (`draft` True: shown, still working, replaced
    by the final answer) and `partial` holds the text generated so far. Frozen: a new `Turn`
    replaces the old one.
    """

    id: str
    question: str
    answer: Answer | None = None
    error: str | None = None
    partial: str = ""
    draft: bool = False

    @classmethod
    def start(cls, question: str) -> Turn:
        """A new turn for `question`, with a fresh short id and nothing answered yet."""
        return cls(id=uuid.uuid4().hex[:12], question=question)


# ---------------------------------------------------------------------------------------------
# Pieces


def esc(text: object) -> str:
    """Text as inert HTML: every markup character escaped, newlines kept."""
    return html.escape(str(text), quote=True).replace("\n", "<br>")


def words(lang: str | None) -> dict[str, str]:
    """The UI words for an answer's language (English for anything else)."""
    return WORDS.get(lang or "en", WORDS["en"])


def clip(text: str, limit: int) -> str:
    """`text` cut to at most `limit` characters, with an ellipsis when cut."""
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _direction(lang: str) -> str:
    return "rtl" if lang == "ar" else "ltr"


def text_dir(text: str) -> str:
    """The `dir` attribute for a piece of text: its dominant script's direction (`qa.text.text_direction`).

    Example: text_dir("Russia-Now.com: ماذا نفى الموقع؟") == 'dir="rtl"'
    """
    return f'dir="{qtext.text_direction(text)}"'


def _where(cite: Citation, lang: str | None) -> str:
    """`<bdi>doc</bdi>, paragraph n` in the answer's language (`p. 3, paragraph n` for a PDF page)."""
    page = f"p. {cite.page}, " if cite.page else ""
    return f"<bdi>{esc(cite.doc)}</bdi>, {page}{words(lang)['para']} {cite.paragraph + 1}"


def badge(n: int, cite: Citation | None) -> str:
    """The `[n]` badge of citation `n`, titled with its document and paragraph when known."""
    title = f' title="{esc(cite.doc)}, ¶{cite.paragraph + 1}"' if cite else ""
    return f'<span class="qa-ref"{title}>[{n}]</span>'


def span_offsets(cite: Citation, short: ShortAnswer | None) -> tuple[int, int] | None:
    """The short answer's [start, end) relative to `cite.quote`, when it lies inside this citation.

    Computed from document offsets only; None when the short answer belongs to another citation or
    its offsets disagree with the quote (then nothing is highlighted inside the sentence).
    """
    if short is None or short.n != cite.n or short.doc != cite.doc:
        return None
    start, end = short.start - cite.start, short.end - cite.start
    if not (0 <= start < end <= len(cite.quote)) or cite.quote[start:end] != short.quote:
        return None
    return start, end


def with_span(quote: str, span: tuple[int, int] | None) -> str:
    """`quote` escaped, with `span` (offsets into it) wrapped in <mark class="qa-span"> when given."""
    if span is None:
        return esc(quote)
    start, end = span
    return f'{esc(quote[:start])}<mark class="qa-span">{esc(quote[start:end])}</mark>{esc(quote[end:])}'


def status_html(text: str) -> str:
    """A one-line status message (e.g. what an upload changed), its direction from its own text."""
    return f'<div class="qa-status" {text_dir(text)}>{esc(text)}</div>'


def notice_html(text: str) -> str:
    """A quiet placeholder message (waiting, nothing to show)."""
    return f'<div class="qa-empty">{esc(text)}</div>'


# ---------------------------------------------------------------------------------------------
# Chat


_MARKER = re.compile(r"\[(\d{1,2})\]")
_QUOTE = re.compile(r"«([^«»]*)»")


def split_quotes(text: str, quotes: Sequence[str] = ()) -> list[str]:
    """`text` cut at its «quotes», like `re.split(r"«([^«»]*)»", text)`: even items are the text
    between quotes, odd items a quote's inner text.

    A `quotes` entry (a cited sentence, exact) right after « and followed by » is one quote even
    when it contains « or » itself (Arabic news quotes speech that way), so none of its text is
    mistaken for the answer's own.

    Example: split_quotes("[1]: «a «b» c»", ["a «b» c"]) == ["[1]: ", "a «b» c", ""]
    """
    known = sorted({q for q in quotes if q}, key=len, reverse=True)
    out, done, i = [], 0, text.find("«")
    while i >= 0:
        inner = next((q for q in known if text.startswith(q + "»", i + 1)), None)
        if inner is None and (m := _QUOTE.match(text, i)):
            inner = m.group(1)
        if inner is None:
            i = text.find("«", i + 1)
            continue
        out += [text[done:i], inner]
        done = i + len(inner) + 2
        i = text.find("«", done)
    out.append(text[done:])
    return out


def answer_body(text: str, citations: Sequence[Citation], short: ShortAnswer | None = None) -> str:
    """Answer text as escaped HTML: `[n]` markers become badges, each long «quote» its own block.

    Only the answer's own markers become badges: the text inside «quotes», and any cited sentence
    wherever it appears (found by its exact text), keeps its brackets as text, so a document's `[1]`
    never points at our sources. A right-to-left quote wrapped inside a left-to-right sentence reads in
    a zigzag, so long quotes sit on their own lines and every piece takes the direction of its own
    dominant script. A quote right after its marker ("[n]: «…»") that is exactly citation n's sentence
    is that citation: with the short answer in it, the sentence is marked and the answer words marked
    more strongly inside it.
    """
    by_n = {c.n: c for c in citations}
    items = {i.text for c in citations for i in c.items}  # the list items quoted under their sentence
    quotes = [c.quote for c in citations] + sorted(items)

    # Where the cited sentences sit in the answer: brackets there are the document's own.
    guarded = [(j, j + len(q)) for q in quotes if q for j in _occurrences(text, q)]

    def badges(raw: str, at: int) -> str:
        """`raw` (the answer's text from offset `at`) escaped, with the answer's own markers as badges."""
        parts, done = [], 0
        for m in _MARKER.finditer(raw):
            if any(a <= at + m.start() < b for a, b in guarded):
                continue  # a bracket of the document's own, inside a cited sentence
            n = int(m.group(1))
            parts += [esc(raw[done : m.start()]), badge(n, by_n.get(n))]
            done = m.end()
        return "".join(parts) + esc(raw[done:])

    def quoted(raw: str, before: str) -> str:
        """A quote's inner HTML: markers inside it stay text; its short-answer words marked by offsets."""
        marker = re.search(r"\[(\d{1,2})\]\s*:?\s*$", before)
        cite = by_n.get(int(marker.group(1))) if marker else None
        span = span_offsets(cite, short) if cite is not None and cite.quote == raw else None
        return f'<mark class="qa-cited">{with_span(raw, span)}</mark>' if span else esc(raw)

    pieces = split_quotes(text, quotes)  # even: text between quotes; odd: a quote's inner text
    out: list[str] = []
    lead: list[str] = []  # the current lead line: text and short inline quotes, as HTML
    framing: list[str] = []  # the lead line's own words (not its quotes): they set its direction

    def flush() -> None:
        html_ = "".join(lead)
        if html_.strip():
            out.append(f'<div class="qa-lead" {text_dir("".join(framing) or html_)}>{html_}</div>')
        lead.clear()
        framing.clear()

    at = 0  # offset of the current piece in `text`

    def is_item(j: int) -> bool:
        """Piece j is a list item quoted on a line of its own under its sentence (`qa.answer.items_text`)."""
        return 0 < j < len(pieces) and j % 2 == 1 and pieces[j] in items and pieces[j - 1].endswith("\n")

    for i, piece in enumerate(pieces):
        start, at = at, at + len(piece) + (i % 2) * 2  # a quote's « and » around it
        if not i % 2:
            if i == 0 or len(pieces[i - 1]) >= QUOTE_BLOCK_CHARS or is_item(i - 1):
                stripped = piece.lstrip()  # a lead line starts after the text's start or a block quote
                start, piece = start + len(piece) - len(stripped), stripped
            if i == len(pieces) - 1 or len(pieces[i + 1]) >= QUOTE_BLOCK_CHARS or is_item(i + 1):
                piece = piece.rstrip()
            lead.append(badges(piece, start))
            framing.append(piece)
        elif is_item(i):  # an item the sentence announces: a line of its own, under it
            flush()
            out.append(f'<div class="qa-quote qa-item" {text_dir(piece)}>«{esc(piece)}»</div>')
        elif len(piece) >= QUOTE_BLOCK_CHARS:  # a long quote: a block of its own
            flush()
            out.append(f'<div class="qa-quote" {text_dir(piece)}>«{quoted(piece, pieces[i - 1])}»</div>')
        else:
            lead.append(f"<bdi {text_dir(piece)}>«{quoted(piece, pieces[i - 1])}»</bdi>")
    flush()
    return "".join(out)


def _occurrences(text: str, sub: str) -> list[int]:
    """Every start offset of `sub` in `text` (non-overlapping)."""
    found, i = [], text.find(sub)
    while i >= 0:
        found.append(i)
        i = text.find(sub, i + len(sub))
    return found


def short_answer_html(answer: Answer) -> str:
    """The short answer above the quote: a caption saying what it is, the words with their [n] badge,
    and (when a rendering could not be checked, so the document's words are shown) the note why."""
    short = answer.short_answer
    if short is None:
        return ""
    w = words(answer.answer_lang)
    if not short.verified:
        kind = w["short_unchecked"]
    elif short.text == short.quote:
        kind = w["short_span"]
    else:
        kind = w["short_rendered"]
    cite = next((c for c in answer.citations if c.n == short.n), None)
    note = (
        f'<div class="qa-note" {text_dir(answer.note)}>{esc(answer.note)}</div>'
        if answer.note and not short.verified
        else ""
    )
    # What the label promises (qa.confidence: a bar certified on the calibration set), or why there is
    # no promise; a short answer that failed a rule says so in its note instead.
    if short.checked:
        check = f'<div class="qa-short-check qa-checked" dir="ltr">{w["short_checked"]}: {esc(short.guarantee or "")}</div>'
    elif short.verified:
        check = f'<div class="qa-short-check qa-not-checked" dir="ltr">{w["short_not_checked"]}: {esc(short.why_not or "")}</div>'
    else:
        check = ""
    return (
        f'<div class="qa-short" data-n="{short.n}" data-checked="{str(short.checked).lower()}">'
        f'<div class="qa-short-caption">{w["short"]} · {kind}</div>'
        f'<div class="qa-short-line"><bdi class="qa-short-text" {text_dir(short.text)} lang="{esc(short.lang)}">'
        f"{esc(short.text)}</bdi> {badge(short.n, cite)}</div>{check}{note}</div>"
    )


def readable_html(answer: Answer) -> str:
    """For an English reader without a checked English short answer: the checked machine
    translations of the sentences that hold the answer (qa.extractive.readable), in the bubble itself,
    each labelled and numbered like its citation; "" when there are none."""
    short = answer.short_answer
    if answer.answer_lang != "en" or answer.abstained or (short is not None and short.verified):
        return ""
    wanted = translation_targets(answer)
    out = []
    for c in answer.citations:
        t = c.translation
        if c.n in wanted and t is not None and t.verified and t.text:
            out.append(
                f'<div class="qa-translation" dir="ltr"><div class="qa-translation-label">'
                f"{esc(translation_label(t, 'en'))} {badge(c.n, c)}</div>"
                f'<p class="qa-translation-text" {text_dir(t.text)} lang="{esc(t.lang)}">{esc(t.text)}</p></div>'
            )
        elif c.n in wanted and t is not None and t.rough and t.check is not None:
            out.append(rough_html(t, badge(c.n, c)))
    return "".join(out)


def _gloss_text(g) -> str:
    """What an English reader reads under one Arabic word: its name in Latin letters, its first
    glosses, or a dash when no witness knows it."""
    if g.latin and (g.kind == "name" or not g.glosses):
        return g.latin
    return ", ".join(g.glosses[:2]) if g.glosses else "–"


def rough_html(translation: Translation, tag: str = "") -> str:
    """A refused English rendering, word-marked: labelled "rough machine translation, not checked",
    each word no word of the source supports marked (its explanation on hover, or on tap: the mark
    takes focus), and the source's content words it leaves out named with their gloss."""
    w = words("en")
    check, text = translation.check, translation.rough or ""
    pieces, at = [], 0
    for word in check.words if check else ():
        if word.kind in ("content", "name", "number") and not word.supported:
            why = w["unsupported"] + (" (a name)" if word.kind == "name" else "")
            pieces.append(esc(text[at : word.start]))
            pieces.append(
                f'<span class="qa-unsupported" tabindex="0" title="{esc(why)}" data-why="{esc(why)}">'
                f"{esc(text[word.start : word.end])}</span>"
            )
            at = word.end
    pieces.append(esc(text[at:]))
    left = [g for g in (check.left_out if check else ()) if g.kind in ("content", "name", "number")]
    missing = (
        f'<div class="qa-rough-why">{w["not_rendered"]}: '
        + ", ".join(f"<bdi lang='ar'>{esc(g.word)}</bdi> ({esc(_gloss_text(g))})" for g in left[:8])
        + "</div>"
        if left
        else ""
    )
    reason = f'<div class="qa-rough-why">{esc(translation.note)}</div>' if translation.note else ""
    return (
        f'<div class="qa-translation qa-rough" dir="ltr"><div class="qa-rough-label">{w["rough"]} {tag}</div>'
        f'<p class="qa-translation-text" lang="en">{"".join(pieces)}</p>{reason}{missing}</div>'
    )


def gloss_html(cite: Citation, short: ShortAnswer | None = None) -> str:
    """The cited Arabic sentence word by word for an English reader (qa.gloss): each word with its
    dictionary gloss or its name in Latin letters, the short answer's words marked; "" without a gloss."""
    if not cite.gloss:
        return ""
    inside = short is not None and short.n == cite.n and short.doc == cite.doc
    cells = []
    for g in cite.gloss:
        kind = "name" if g.kind == "name" else ("none" if not g.covered else g.kind)
        span = " qa-gw-span" if inside and short.start <= g.start and g.end <= short.end else ""
        cells.append(
            f'<span class="qa-gw qa-gw-{kind}{span}" data-start="{g.start}" data-end="{g.end}">'
            f'<bdi class="qa-gw-ar" lang="ar">{esc(g.word)}</bdi>'
            f'<span class="qa-gw-en" lang="en">{esc(_gloss_text(g))}</span></span>'
        )
    return (
        f'<div class="qa-gloss" dir="ltr"><div class="qa-gloss-label">{words("en")["gloss"]}</div>'
        f'<div class="qa-gloss-words">{"".join(cells)}</div></div>'
    )


def user_html(question: str) -> str:
    """A user's question as a chat bubble, its direction taken from its own text."""
    return f'<div class="qa-msg qa-user" {text_dir(question)}>{esc(question)}</div>'


def answer_html(turn: Turn) -> str:
    """An assistant bubble: the answer with [n] badges (and its short answer above the quote), an
    abstention, an error, or text still streaming; a draft answer is marked as still working."""
    if turn.error:
        title = f'<div class="qa-error-title">{words("en")["error"]}</div>'
        return f'<div class="qa-msg qa-error" {text_dir(turn.error)}>{title}{esc(turn.error)}</div>'
    answer = turn.answer
    if answer is None:
        return f'<div class="qa-msg qa-streaming" {text_dir(turn.partial)}>{esc(turn.partial or "…")}</div>'
    lang = answer.answer_lang
    # The answer's language sets the bubble's direction; its pieces (quotes) still choose their own.
    dir_ = _direction(lang)
    short = answer.short_answer
    # An unchecked short answer's note is shown with it (short_answer_html), not again at the end.
    noted = answer.note and (answer.abstained or short is None or short.verified)
    tail = f'<div class="qa-note" {text_dir(answer.note)}>{esc(answer.note)}</div>' if noted else ""
    classes = "qa-msg qa-abstain" if answer.abstained else "qa-msg qa-answer"
    if turn.draft:  # shown now, replaced by the final answer: visibly still working
        tail += f'<div class="qa-working" dir="{dir_}">{words(lang)["working"]}</div>'
        classes += " qa-streaming"
    if answer.abstained:
        closest = ""
        if answer.closest:
            c = answer.closest[0]
            closest = (
                f'<div class="qa-closest">{words(lang)["closest"]} ({_where(c, lang)}):'
                f'<div class="qa-quote" {text_dir(c.quote)}>«{esc(clip(c.quote, 220))}»</div></div>'
            )
        return (
            f'<div class="{classes}" dir="{dir_}">'
            f'<div class="qa-abstain-title">{words(lang)["abstain"]}</div>'
            f"{esc(answer.answer)}{closest}{tail}</div>"
        )
    body = (
        short_answer_html(answer)
        + answer_body(answer.answer, answer.citations, short)
        + readable_html(answer)
    )
    if turn.draft:  # a draft must not read like an answer: it may still end as an abstention
        body = f'<div class="qa-draft-title">{words(lang)["draft"]}</div>' + body
    refs = " · ".join(f'<span class="qa-ref">[{c.n}]</span> {_where(c, lang)}' for c in answer.citations)
    meta = f'<div class="qa-meta">{words(lang)["sources"]}: {refs}</div>' if refs else ""
    return f'<div class="{classes}" dir="{dir_}">{body}{meta}{tail}</div>'


def chat_messages(turns: Sequence[Turn]) -> list[dict[str, str]]:
    """The chatbot's messages (user, assistant, user, …) for the conversation so far."""
    out = []
    for turn in turns:
        out.append({"role": "user", "content": user_html(turn.question)})
        out.append({"role": "assistant", "content": answer_html(turn)})
    return out


# ---------------------------------------------------------------------------------------------
# Sources


def passage_html(cite: Citation, *, context: int = CONTEXT_CHARS, short: ShortAnswer | None = None) -> str:
    """The cited sentence, highlighted with <mark> by its offsets, inside a window of its passage.

    With the short answer of this citation, its words are marked again inside the sentence
    (<mark class="qa-span">), by its offsets relative to the citation's.
    """
    passage, quote = cite.passage or cite.quote, cite.quote
    start = cite.start - cite.passage_start if cite.passage else 0
    if passage[start : start + len(quote)] != quote:
        start = max(passage.find(quote), 0)  # offsets disagree (never expected): fall back to search
    end = start + len(quote)
    span = span_offsets(cite, short) if passage[start:end] == quote else None
    before, after = passage[max(0, start - context) : start], passage[end : end + context]
    if start > context:
        before = "…" + before.split(" ", 1)[-1]
    if len(passage) - end > context:
        after = after.rsplit(" ", 1)[0] + "…"
    return (
        f'<p class="qa-passage" {text_dir(before + quote + after)}>{esc(before)}'
        f"<mark>{with_span(passage[start:end], span)}</mark>{esc(after)}</p>"
    )


def items_html(cite: Citation) -> str:
    """The list items or table rows a cited sentence announces (`Citation.items`), each highlighted,
    a line each under its passage; empty when it has none."""
    if not cite.items:
        return ""
    rows = "".join(f"<li {text_dir(i.text)}><mark>{esc(i.text)}</mark></li>" for i in cite.items)
    return f'<ul class="qa-items" {text_dir(cite.items[0].text)}>{rows}</ul>'


def scan_html(cite: Citation) -> str:
    """A cited sentence read by OCR, shown on its page image: the region around it, its words boxed,
    with the recogniser's confidence; empty for a sentence from a text layer or a missing image."""
    found = cite.recognition
    if found is None:
        return ""
    png = qocr.highlight(found)
    caption = (
        f"As scanned, p. {found.page}: the cited words boxed. OCR confidence {found.confidence:.0%} on average"
        + (f", {found.lowest:.0%} for «{esc(found.lowest_word)}»" if found.lowest_word else "")
        + "."
    )
    if png is None:
        return f'<figure class="qa-scan"><figcaption>{caption} (The page image is missing.)</figcaption></figure>'
    data = base64.b64encode(png).decode("ascii")
    return (
        f'<figure class="qa-scan"><img src="data:image/png;base64,{data}" '
        f'alt="The cited sentence on page {found.page} of the scan, its words boxed">'
        f'<figcaption dir="ltr">{caption}</figcaption></figure>'
    )


def translation_label(translation: Translation, lang: str | None) -> str:
    """A checked translation's label in the answer's language; an English rendering (of Arabic,
    checked word by word) adds the check's measured record (`qa.wordcheck.record_note`): too few
    renderings passed it to certify a rate, and the page says so."""
    label = words(lang)["translated"]
    return f"{label} ({wordcheck.record_note()})" if translation.lang == "en" else label


def translation_html(translation: Translation, lang: str | None) -> str:
    """A cited sentence's machine translation under its passage, labelled in the answer's language.

    Only a checked translation's text is shown as a translation (its direction taken from its own
    text); an English one refused by the word check is shown word-marked as a rough machine
    translation that is not checked (`rough_html`); any other that failed shows why instead.
    """
    w = words(lang)
    if (translation.text is None or not translation.verified) and translation.rough and translation.check:
        return rough_html(translation)
    if translation.text is None or not translation.verified:
        reason = translation.note or w["unchecked"]
        return (
            f'<div class="qa-translation qa-translation-none" dir="{_direction(lang or "en")}">'
            f"{w['untranslated']}: <bdi {text_dir(reason)}>{esc(reason)}</bdi></div>"
        )
    return (
        f'<div class="qa-translation" dir="{_direction(lang or "en")}">'
        f'<div class="qa-translation-label">{esc(translation_label(translation, lang))}</div>'
        f'<p class="qa-translation-text" {text_dir(translation.text)} lang="{esc(translation.lang)}">'
        f"{esc(translation.text)}</p></div>"
    )


def untranslated(answer: Answer | None) -> list[Citation]:
    """The cited (and closest) sentences a translation would add to: not yet translated, and not
    already in the answer's language (one per distinct sentence)."""
    if answer is None:
        return []
    seen: dict[str, Citation] = {}
    for c in (*answer.citations, *answer.closest):
        if c.translation is None and qtext.detect_language(c.quote) != answer.answer_lang:
            seen.setdefault(c.quote, c)
    return list(seen.values())


def translate_label(lang: str | None) -> str:
    """The Sources panel's translate control: in English, and in Arabic too for an Arabic answer."""
    english = WORDS["en"]["translate"]
    return f"{english} · {WORDS['ar']['translate']}" if lang == "ar" else english


def translating_text(answer: Answer) -> str:
    """The status line while an answer's cited sentences are being translated."""
    return words(answer.answer_lang)["translating"].format(n=max(len(untranslated(answer)), 1))


def sources_html(turn: Turn | None, *, working: str | None = None) -> str:
    """The sources panel for one turn: each citation with its document, paragraph, score and passage
    (and its checked translation, once asked for).

    An abstained answer shows its closest passages instead, marked as not an answer. `working` is a
    status line shown at the end (e.g. while the citations are being translated).
    """
    if turn is None:
        return notice_html(
            "Ask a question: the sentences an answer cites appear here, "
            "highlighted in their paragraph, so you can check them."
        )
    answer = turn.answer
    if turn.error or answer is None:
        return notice_html("No sources for this message.")
    lang = answer.answer_lang
    cites, closest = answer.citations, answer.closest if answer.abstained else ()
    if not cites and not closest:
        return notice_html("Nothing in the documents came close to this question.")
    title = clip(answer.question, 160)
    parts = [f'<div class="qa-section-title" {text_dir(title)}>{esc(title)}</div>']
    if closest:
        parts.append(
            f'<div class="qa-section-title qa-closest" dir="{_direction(lang)}">{words(lang)["closest"]}</div>'
        )
    for c in cites or closest:
        tag = f'<span class="qa-ref">[{c.n}]</span>' if cites else ""
        head = (
            f'{tag}<bdi class="qa-src-doc">{esc(c.doc)}</bdi>'
            + (f"<span>p. {c.page}</span>" if c.page else "")
            + f"<span>{words(lang)['para']} {c.paragraph + 1}</span>"
            f"<span>{words(lang)['score']} {c.score:.2f}</span>"
        )
        parts.append(
            f'<article class="qa-src{"" if cites else " qa-src-closest"}" data-n="{c.n}">'
            f'<div class="qa-src-head" dir="{_direction(lang)}">{head}</div>'
            f"{passage_html(c, short=answer.short_answer if cites else None)}{items_html(c)}{scan_html(c)}"
            f"{translation_html(c.translation, lang) if c.translation else ''}"
            f"{gloss_html(c, answer.short_answer if cites else None)}</article>"
        )
    if working:
        parts.append(f'<div class="qa-working" {text_dir(working)}>{esc(working)}</div>')
    parts.append(notice_html("Click an answer in the chat to show its sources here."))
    return f'<div class="qa-sources">{"".join(parts)}</div>'


# ---------------------------------------------------------------------------------------------
# Documents


def documents_html(docs: Sequence[DocInfo], *, overviews: int | None = None) -> str:
    """The indexed documents as a small table (names escaped: a file name is user input too).

    With `overviews` (how many documents get an overview below the table), says so when there are more.
    """
    if not docs:
        return notice_html("Nothing is indexed yet: upload a document below.")
    more = (
        notice_html(f"Overviews below: the first {overviews} of {len(docs)} documents.")
        if overviews is not None and len(docs) > overviews
        else ""
    )
    rows = "".join(
        f'<tr><td><bdi dir="auto">{esc(d.id)}</bdi></td><td class="num">{d.chunks}</td>'
        f'<td class="num">{d.chars:,}</td></tr>'
        for d in docs
    )
    return (
        '<table class="qa-docs"><thead><tr><th>Document</th><th class="num">Passages</th>'
        f'<th class="num">Characters</th></tr></thead><tbody>{rows}</tbody></table>{more}'
    )


def overview_html(sentences: Sequence[Evidence]) -> str:
    """A document's overview: its central sentences (`qa.overview.central_sentences`), escaped, each in
    its own direction, numbered in document order with their paragraph."""
    if not sentences:
        return notice_html("This document has no sentences to show.")
    items = "".join(
        f'<li {text_dir(s.text)}>{esc(s.text)} <span class="qa-meta">¶{s.paragraph + 1}</span></li>'
        for s in sentences
    )
    return (
        f'<div class="qa-overview"><div class="qa-overview-caption">{OVERVIEW_CAPTION}</div>'
        f'<ol class="qa-overview-list">{items}</ol></div>'
    )


def conversation_label(conversation: Conversation, *, now: float | None = None) -> str:
    """A saved conversation in the list: its title, how many questions, and when it last changed
    (the time of day when today, else the date), in UTC.

    Example: "\u2068What did the Kremlin deny?\u2069 · 2 questions · 14:05"
    """
    when = datetime.fromtimestamp(conversation.updated, UTC)
    today = datetime.fromtimestamp(now if now is not None else datetime.now(UTC).timestamp(), UTC).date()
    stamp = f"{when:%H:%M}" if when.date() == today else f"{when:%Y-%m-%d}"
    count = f"{conversation.turns} question{'s' if conversation.turns != 1 else ''}"
    # The title is isolated (FSI … PDI): an Arabic title must not pull the count and time into its run.
    return f"\u2068{conversation.title}\u2069 · {count} · {stamp}"


# ---------------------------------------------------------------------------------------------
# Exports


def translation_markdown(translation: Translation) -> str:
    """A citation's translation as one Markdown line under its quote (the text only when checked)."""
    if translation.text is None or not translation.verified:
        return f"  _No translation shown: {translation.note or WORDS['en']['unchecked']}_"
    label = "checked word by word against the sentence"
    if translation.lang == "en":
        label += f" ({wordcheck.record_note()})"
    return f"  Machine translation ({translation.lang}), {label}: {translation.text}"


def conversation_markdown(turns: Sequence[Turn], *, now: datetime | None = None) -> str:
    """The conversation with its citations as Markdown (document text quoted as it is)."""
    now = now or datetime.now(UTC)
    lines = [f"# Conversation exported {now:%Y-%m-%d %H:%M} UTC", ""]
    for i, turn in enumerate(turns, start=1):
        lines += [f"## {i}. {turn.question}", ""]
        answer = turn.answer
        if turn.error or answer is None:
            lines += [f"_Error: {turn.error or 'no answer'}_", ""]
            continue
        short = answer.short_answer
        if short is not None:
            lines += [f"Short answer: {short.text} [{short.n}] ({short.status(answer.note)})", ""]
        lines += [answer.answer, ""]
        if answer.note and (short is None or short.verified):
            lines += [f"_{answer.note}_", ""]
        shown = answer.citations or answer.closest
        if shown:
            lines += ["Sources:" if answer.citations else "Closest passages (not an answer):", ""]
        for c in shown:
            lines.append(
                f"- [{c.n}] {c.doc}, paragraph {c.paragraph + 1}, characters {c.start}–{c.end}, "
                f"score {c.score:.2f}"
            )
            lines.append(f"  > {c.quote}")
            if c.translation is not None:
                lines.append(translation_markdown(c.translation))
        lines += ["", f"_mode: {answer.mode}_", ""]
    return "\n".join(lines)


def conversation_json(turns: Sequence[Turn], *, now: datetime | None = None) -> str:
    """The conversation as JSON: each turn's id, question, full answer record (or null) and error."""
    now = now or datetime.now(UTC)
    payload = {
        "exported": now.isoformat(timespec="seconds"),
        "turns": [
            {
                "id": t.id,
                "question": t.question,
                "answer": answer_record(t.answer) if t.answer else None,
                "error": t.error,
            }
            for t in turns
        ],
    }
    return json.dumps(payload, ensure_ascii=False, indent=2)
