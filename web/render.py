"""Rendering for the web UI: typed turns and answers in, inert HTML and conversation exports out.

A conversation is a list of `Turn`s (question, then the `qa.answer.Answer` or an error; `partial`
holds the text streamed so far). From them this module makes the chat bubbles, the sources panel
(each cited sentence highlighted with <mark> inside its passage, by its offsets), the documents
table, the page's CSS, and the Markdown and JSON exports. Every piece of user or document text is
HTML-escaped here, and nothing is run through Markdown, so a document is always shown as text,
never run. Each message takes its direction from its own text (dir="auto", <bdi>).

Example:
    answer_html(Turn("t1", "What did the Kremlin deny?", answer))

Leaves out: Gradio (web/app.py builds the components and wires the events), answer wording (qa/)
and the feedback line (eval/questions.py: it is a question-set record).
"""

from __future__ import annotations

import html
import json
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from qa.answer import Answer, Citation

if TYPE_CHECKING:
    from qa.store import DocInfo

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
    },
    "ar": {
        "sources": "المصادر",
        "para": "الفقرة",
        "score": "الدرجة",
        "abstain": "غير موجود في الوثائق",
        "closest": "أقرب مقطع (ليس جواباً)",
        "error": "تعذّرت الإجابة",
    },
}

HEADER_HTML = (
    "<h1>Ask the documents</h1><p>Answers quote the indexed documents word for word, in English "
    "or Arabic. Each <span class='qa-ref'>[n]</span> points to a sentence you can check under "
    "Sources.</p>"
)

CSS = """
.qa-msg { unicode-bidi: plaintext; text-align: start; line-height: 1.6; }
.qa-user { font-weight: 500; }
.qa-quote { margin: .3em 0 .5em; padding: .05em .75em; text-align: start; unicode-bidi: plaintext;
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
.qa-sources { display: flex; flex-direction: column; gap: .75em; }
.qa-src { border: 1px solid var(--border-color-primary); border-radius: .6em; padding: .6em .8em;
  background: var(--background-fill-secondary); }
.qa-src.qa-src-closest { border-style: dashed; opacity: .9; }
.qa-src-head { display: flex; flex-wrap: wrap; gap: .4em; align-items: baseline; font-size: .85em;
  color: var(--body-text-color-subdued); margin-bottom: .35em; }
.qa-src-doc { font-weight: 600; color: var(--body-text-color); overflow-wrap: anywhere; }
.qa-passage { unicode-bidi: plaintext; text-align: start; line-height: 1.75; margin: 0; }
.qa-passage mark { background: #fde68a; color: #1f2937; padding: .05em .15em; border-radius: .25em; }
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
#qa-header h1 { margin-bottom: 0; }
#qa-header p { margin-top: .2em; color: var(--body-text-color-subdued); }
"""


@dataclass(frozen=True)
class Turn:
    """One exchange: the question and, once finished, its `Answer` or an error message.

    While an answer streams, `answer` is None (or a draft that a later answer replaces) and
    `partial` holds the text generated so far. Frozen: a new `Turn` replaces the old one.
    """

    id: str
    question: str
    answer: Answer | None = None
    error: str | None = None
    partial: str = ""

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


def _where(cite: Citation, lang: str | None) -> str:
    """`<bdi>doc</bdi>, paragraph n` in the answer's language (`p. 3, paragraph n` for a PDF page)."""
    page = f"p. {cite.page}, " if cite.page else ""
    return f"<bdi>{esc(cite.doc)}</bdi>, {page}{words(lang)['para']} {cite.paragraph + 1}"


def status_html(text: str) -> str:
    """A one-line status message (e.g. what an upload changed), its direction from its own text."""
    return f'<div class="qa-status" dir="auto">{esc(text)}</div>'


def notice_html(text: str) -> str:
    """A quiet placeholder message (waiting, nothing to show)."""
    return f'<div class="qa-empty">{esc(text)}</div>'


# ---------------------------------------------------------------------------------------------
# Chat


def answer_body(text: str, citations: Sequence[Citation]) -> str:
    """Answer text as escaped HTML: `[n]` markers become badges, each long «quote» its own block.

    A right-to-left quote wrapped inside a left-to-right sentence reads in a zigzag, so long quotes
    sit on their own lines and every piece takes its direction from its own text.
    """
    by_n = {c.n: c for c in citations}

    def badge(m: re.Match[str]) -> str:
        c = by_n.get(int(m.group(1)))
        title = f' title="{esc(c.doc)}, ¶{c.paragraph + 1}"' if c else ""
        return f'<span class="qa-ref"{title}>[{m.group(1)}]</span>'

    def badges(text_html: str) -> str:
        text_html = re.sub(r"«([^«»]*)»", r'<bdi dir="auto">«\1»</bdi>', text_html)
        return re.sub(r"\[(\d{1,2})\]", badge, text_html)

    parts = re.split(rf"«([^«»]{{{QUOTE_BLOCK_CHARS},}})»", text)
    out = []
    for i, part in enumerate(parts):
        if i % 2:  # a long quote: shown exactly as it is, markers inside it left alone
            out.append(f'<div class="qa-quote" dir="auto">«{esc(part)}»</div>')
        elif part.strip():
            out.append(f'<div class="qa-lead" dir="auto">{badges(esc(part.strip()))}</div>')
    return "".join(out)


def user_html(question: str) -> str:
    """A user's question as a chat bubble, its direction taken from its own text."""
    return f'<div class="qa-msg qa-user" dir="auto">{esc(question)}</div>'


def answer_html(turn: Turn) -> str:
    """An assistant bubble: the answer with [n] badges, an abstention, an error, or text still streaming."""
    if turn.error:
        title = f'<div class="qa-error-title">{words("en")["error"]}</div>'
        return f'<div class="qa-msg qa-error" dir="auto">{title}{esc(turn.error)}</div>'
    answer = turn.answer
    if answer is None:
        return f'<div class="qa-msg qa-streaming" dir="auto">{esc(turn.partial or "…")}</div>'
    lang = answer.answer_lang
    # The answer's language sets the bubble's direction; its pieces (quotes) still choose their own.
    dir_ = _direction(lang)
    note = f'<div class="qa-note" dir="auto">{esc(answer.note)}</div>' if answer.note else ""
    if answer.abstained:
        closest = ""
        if answer.closest:
            c = answer.closest[0]
            closest = (
                f'<div class="qa-closest">{words(lang)["closest"]} ({_where(c, lang)}):'
                f'<div class="qa-quote" dir="auto">«{esc(clip(c.quote, 220))}»</div></div>'
            )
        return (
            f'<div class="qa-msg qa-abstain" dir="{dir_}">'
            f'<div class="qa-abstain-title">{words(lang)["abstain"]}</div>'
            f"{esc(answer.answer)}{closest}{note}</div>"
        )
    body = answer_body(answer.answer, answer.citations)
    refs = " · ".join(f'<span class="qa-ref">[{c.n}]</span> {_where(c, lang)}' for c in answer.citations)
    meta = f'<div class="qa-meta">{words(lang)["sources"]}: {refs}</div>' if refs else ""
    return f'<div class="qa-msg qa-answer" dir="{dir_}">{body}{meta}{note}</div>'


def chat_messages(turns: Sequence[Turn]) -> list[dict[str, str]]:
    """The chatbot's messages (user, assistant, user, …) for the conversation so far."""
    out = []
    for turn in turns:
        out.append({"role": "user", "content": user_html(turn.question)})
        out.append({"role": "assistant", "content": answer_html(turn)})
    return out


# ---------------------------------------------------------------------------------------------
# Sources


def passage_html(cite: Citation, *, context: int = CONTEXT_CHARS) -> str:
    """The cited sentence, highlighted with <mark> by its offsets, inside a window of its passage."""
    passage, quote = cite.passage or cite.quote, cite.quote
    start = cite.start - cite.passage_start if cite.passage else 0
    if passage[start : start + len(quote)] != quote:
        start = max(passage.find(quote), 0)  # offsets disagree (never expected): fall back to search
    end = start + len(quote)
    before, after = passage[max(0, start - context) : start], passage[end : end + context]
    if start > context:
        before = "…" + before.split(" ", 1)[-1]
    if len(passage) - end > context:
        after = after.rsplit(" ", 1)[0] + "…"
    return (
        f'<p class="qa-passage" dir="auto">{esc(before)}<mark>{esc(passage[start:end])}</mark>'
        f"{esc(after)}</p>"
    )


def sources_html(turn: Turn | None) -> str:
    """The sources panel for one turn: each citation with its document, paragraph, score and passage.

    An abstained answer shows its closest passages instead, marked as not an answer.
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
    parts = [f'<div class="qa-section-title" dir="auto">{esc(clip(answer.question, 160))}</div>']
    if closest:
        parts.append(f'<div class="qa-section-title qa-closest" dir="auto">{words(lang)["closest"]}</div>')
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
            f'<div class="qa-src-head" dir="{_direction(lang)}">{head}</div>{passage_html(c)}</article>'
        )
    parts.append(notice_html("Click an answer in the chat to show its sources here."))
    return f'<div class="qa-sources">{"".join(parts)}</div>'


# ---------------------------------------------------------------------------------------------
# Documents


def documents_html(docs: Sequence[DocInfo]) -> str:
    """The indexed documents as a small table (names escaped: a file name is user input too)."""
    if not docs:
        return notice_html("Nothing is indexed yet: upload a document below.")
    rows = "".join(
        f'<tr><td dir="auto">{esc(d.id)}</td><td class="num">{d.chunks}</td>'
        f'<td class="num">{d.chars:,}</td></tr>'
        for d in docs
    )
    return (
        '<table class="qa-docs"><thead><tr><th>Document</th><th class="num">Passages</th>'
        f'<th class="num">Characters</th></tr></thead><tbody>{rows}</tbody></table>'
    )


# ---------------------------------------------------------------------------------------------
# Exports


def answer_record(answer: Answer) -> dict:
    """`Answer.to_dict()` plus each citation's surrounding passage and its offset, for the exports."""
    data = answer.to_dict()
    for key, cites in (("citations", answer.citations), ("closest", answer.closest)):
        for row, cite in zip(data[key], cites):
            row["passage"] = cite.passage
            row["passage_start"] = cite.passage_start
    return data


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
        lines += [answer.answer, ""]
        if answer.note:
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
