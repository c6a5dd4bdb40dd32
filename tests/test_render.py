"""web.render without a server or a model: escaping, direction, abstention, highlights and exports.

Answers and citations are built directly (they are plain frozen dataclasses) over the seed article
and tests/fixtures/xss_notice.md, so every offset is a real offset into a real document text.
"""

from __future__ import annotations

import base64
import copy
import io
import json
import re
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from qa import wordcheck
from qa.answer import Answer, Citation
from qa.retrieve import Evidence
from qa.store import DocInfo
from qa.translate import Translation
from qa.types import ShortAnswer
from web import render
from web.render import Turn

ROOT = Path(__file__).resolve().parent.parent
SEED = ROOT / "seeds" / "000_30343400e31c82a3.txt"
XSS_DOC = Path(__file__).parent / "fixtures" / "xss_notice.md"
SEED_TEXT = SEED.read_text(encoding="utf-8")
XSS_TEXT = XSS_DOC.read_text(encoding="utf-8")
NOW = datetime(2024, 5, 1, 12, 30, tzinfo=UTC)
# Every tag a hostile document holds must arrive escaped; the page's own tags are these.
OWN_TAGS = {"div", "span", "bdi", "mark", "p", "article", "br", "table", "thead", "tbody", "tr", "th", "td"}


def cite(text: str, quote: str, *, n: int = 1, doc: str = SEED.name, paragraph: int = 0, occurrence: int = 0):
    """A citation of `quote` (its `occurrence`-th appearance) with the paragraph around it as passage."""
    start = -1
    for _ in range(occurrence + 1):
        start = text.index(quote, start + 1)
    p_start = text.rfind("\n", 0, start) + 1
    p_end = text.find("\n", start)
    p_end = len(text) if p_end < 0 else p_end
    return Citation(
        n=n,
        doc=doc,
        chunk_id=f"{doc}#{p_start}",
        start=start,
        end=start + len(quote),
        quote=quote,
        paragraph=paragraph,
        score=0.8123,
        passage=text[p_start:p_end],
        passage_start=p_start,
    )


def answer(text: str, citations=(), *, lang: str = "en", abstained: bool = False, closest=(), note=None):
    return Answer(
        question="What did the Kremlin deny?" if lang == "en" else "ماذا نفى الكرملين؟",
        question_lang=lang,
        answer=text,
        mode="extractive",
        abstained=abstained,
        citations=tuple(citations),
        timings_ms={"total": 12.34},
        closest=tuple(closest),
        answer_lang=lang,
        note=note,
    )


def tags(page: str) -> set[str]:
    return {t.lower() for t in re.findall(r"<\s*([a-zA-Z][\w-]*)", page)}


SCRIPT = 'The attacker wrote <script>window.__xss = 1; alert("script ran")</script> into the notice board.'
IMG = "He also pasted <img src=x onerror=\"window.__xss = 2; alert('image ran')\"> beside the script."
LAVROV = "أعلن وزير الخارجية الروسي سيرغي لافروف"


def hostile_turn() -> Turn:
    c1 = cite(XSS_TEXT, SCRIPT, doc="<b>notice</b>.md", paragraph=2)
    c2 = cite(XSS_TEXT, IMG, n=2, doc="<b>notice</b>.md", paragraph=4)
    text = f"According to the article [1]: «{SCRIPT} [3]» It also says [2]: «{IMG}»"
    return Turn("t1", "<b>What</b> did the attacker write? [1]", answer(text, [c1, c2]))


def test_hostile_document_text_is_escaped_everywhere():
    turn = hostile_turn()
    page = render.answer_html(turn) + render.sources_html(turn) + render.user_html(turn.question)
    assert tags(page) <= OWN_TAGS  # no <script>, <img>, <b> or <a> from the document or the user
    assert "&lt;script&gt;window.__xss = 1;" in page and "&lt;img src=x onerror=" in page
    assert "&lt;b&gt;notice&lt;/b&gt;.md" in page and "&lt;b&gt;What&lt;/b&gt;" in page
    assert "onerror=" not in re.sub(r"&lt;img[^<]*", "", page)  # only inside escaped text


def test_markers_inside_quotes_stay_text_and_real_markers_become_badges():
    html = render.answer_html(hostile_turn())
    quotes = re.findall(r'<div class="qa-quote" dir="ltr">(.*?)</div>', html)
    assert len(quotes) == 2 and "[3]</" not in quotes[0] and "[3]»" in quotes[0]  # a «…[3]» stays text
    badges = re.findall(r'<span class="qa-ref"( title="[^"]*")?>\[(\d+)\]</span>', html)
    assert [n for _, n in badges] == ["1", "2", "1", "2"]  # two in the lead text, two in the sources line
    assert badges[0][0] == ' title="&lt;b&gt;notice&lt;/b&gt;.md, ¶3"'
    # A user's "[1]" is text too: only answers get badges.
    assert "qa-ref" not in render.user_html("see [1]")


def test_direction_per_message():
    en = Turn(
        "e",
        "What did the Kremlin deny?",
        answer(f"According to the article [1]: «{LAVROV}»", [cite(SEED_TEXT, LAVROV)]),
    )
    ar = Turn(
        "a",
        "ماذا نفى الكرملين؟",
        answer(f"بحسب المقال [1]: «{LAVROV}»", [cite(SEED_TEXT, LAVROV)], lang="ar"),
    )
    assert render.answer_html(en).startswith('<div class="qa-msg qa-answer" dir="ltr">')
    assert render.answer_html(ar).startswith('<div class="qa-msg qa-answer" dir="rtl">')
    # Pieces choose their own direction: the Arabic quote inside the English answer, the question.
    assert f'<bdi dir="rtl">«{LAVROV}»</bdi>' in render.answer_html(en)
    assert render.user_html(ar.question) == f'<div class="qa-msg qa-user" dir="rtl">{ar.question}</div>'
    assert '<div class="qa-src-head" dir="rtl">' in render.sources_html(ar)
    assert '<div class="qa-src-head" dir="ltr">' in render.sources_html(en)
    assert "الفقرة 1" in render.sources_html(ar) and "paragraph 1" in render.sources_html(en)
    assert '<p class="qa-passage" dir="rtl">' in render.sources_html(en)  # the Arabic passage


def test_long_quotes_are_blocks_of_their_own():
    long_quote = SEED_TEXT.split("\n")[0][:200]
    turn = Turn(
        "t", "q", answer(f"According to the article [1]: «{long_quote}»", [cite(SEED_TEXT, long_quote)])
    )
    html = render.answer_html(turn)
    assert f'<div class="qa-quote" dir="rtl">«{long_quote}»</div>' in html
    assert '<div class="qa-lead" dir="ltr">According to the article <span class="qa-ref"' in html


def test_highlight_marks_exactly_the_cited_span_by_its_offsets():
    # "لافروف" appears several times; the citation is the second one, and <mark> must be there.
    quote = "سيرغي لافروف"
    second = cite(SEED_TEXT, quote, occurrence=1)
    first_at = SEED_TEXT.index(quote)
    assert second.start != first_at and second.passage_start <= second.start
    html = render.passage_html(second)
    before = re.search(r'<p class="qa-passage" dir="rtl">(.*?)<mark>', html).group(1)
    marked = re.search(r"<mark>(.*?)</mark>", html).group(1)
    assert marked == quote
    offset_in_passage = second.start - second.passage_start
    expected_before = second.passage[max(0, offset_in_passage - render.CONTEXT_CHARS) : offset_in_passage]
    assert before.removeprefix("…") in expected_before and before.endswith(expected_before[-20:])


def test_highlight_clips_a_long_passage_on_both_sides():
    paragraph = SEED_TEXT.split("\n")[1]
    quote = "ويشمل العرض، بحسب التسريبات الأميركية، تشديد الخناق على داعش وجبهة النصرة."
    c = cite(SEED_TEXT, quote)
    assert c.passage == paragraph and len(paragraph) > len(quote) + 2 * 40
    html = render.passage_html(c, context=40)
    text = re.sub(r"</?(p|mark)[^>]*>", "", html)
    assert text.startswith("…") and text.endswith("…") and quote in text
    assert len(text) < len(quote) + 2 * 40 + 4


def test_abstention_shows_the_closest_passage_and_cites_nothing():
    closest = cite(SEED_TEXT, LAVROV)
    for lang, title, words in (
        ("en", "Not in the documents", "Closest passage"),
        ("ar", "غير موجود", "أقرب مقطع"),
    ):
        text = (
            "The article does not answer this question." if lang == "en" else "لا يجيب المقال عن هذا السؤال."
        )
        turn = Turn("t", "How old is Lavrov?", answer(text, abstained=True, closest=[closest], lang=lang))
        bubble = render.answer_html(turn)
        assert bubble.startswith(f'<div class="qa-msg qa-abstain" dir="{"rtl" if lang == "ar" else "ltr"}">')
        assert title in bubble and text in bubble and words in bubble
        assert "qa-ref" not in bubble and f"«{LAVROV}»" in bubble
        sources = render.sources_html(turn)
        assert "qa-src-closest" in sources and f"<mark>{LAVROV}</mark>" in sources and "qa-ref" not in sources
    nothing = Turn("t", "q", answer("Nothing is indexed yet: add a document first.", abstained=True))
    assert "qa-closest" not in render.answer_html(nothing)
    assert "Nothing in the documents came close" in render.sources_html(nothing)


def test_streaming_error_and_note_bubbles():
    assert render.answer_html(Turn("t", "q")) == '<div class="qa-msg qa-streaming" dir="ltr">…</div>'
    streaming = render.answer_html(Turn("t", "q", partial="<i>Kerry</i> [1"))
    assert "qa-streaming" in streaming and "&lt;i&gt;Kerry&lt;/i&gt; [1" in streaming
    error = render.answer_html(Turn("t", "q", error="The question is <empty>."))
    assert 'class="qa-msg qa-error"' in error and "Could not answer" in error and "&lt;empty&gt;" in error
    assert (
        render.sources_html(Turn("t", "q", error="x"))
        == '<div class="qa-empty">No sources for this message.</div>'
    )
    noted = Turn("t", "q", answer(f"[1] «{LAVROV}»", [cite(SEED_TEXT, LAVROV)], note="Fell back <now>."))
    assert '<div class="qa-note" dir="ltr">Fell back &lt;now&gt;.</div>' in render.answer_html(noted)
    assert "Ask a question" in render.sources_html(None)


def test_chat_messages_alternate_user_and_assistant():
    turns = [Turn("a", "one"), Turn("b", "two", error="no")]
    messages = render.chat_messages(turns)
    assert [m["role"] for m in messages] == ["user", "assistant", "user", "assistant"]
    assert messages[3]["content"] == render.answer_html(turns[1])


def test_documents_table_escapes_names():
    assert "Nothing is indexed yet" in render.documents_html([])
    html = render.documents_html([DocInfo(id="<script>x</script>.txt", sha256="0", chunks=3, chars=12345)])
    assert "&lt;script&gt;x&lt;/script&gt;.txt" in html and "<script" not in html
    assert '<td class="num">3</td><td class="num">12,345</td>' in html


def conversation() -> list[Turn]:
    c1, c2 = cite(SEED_TEXT, LAVROV), cite(XSS_TEXT, SCRIPT, n=2, doc=XSS_DOC.name, paragraph=2)
    first = Turn("t0", "Who negotiated?", answer(f"According to the article [1]: «{LAVROV}» [2]", [c1, c2]))
    abstained = Turn(
        "t1",
        "How old is he?",
        answer("The article does not answer this question.", abstained=True, closest=[c1]),
    )
    return [first, abstained, Turn("t2", "Why?", error="The LLM is unreachable.")]


def test_markdown_export():
    md = render.conversation_markdown(conversation(), now=NOW)
    assert md.startswith("# Conversation exported 2024-05-01 12:30 UTC\n")
    assert "## 1. Who negotiated?" in md and "## 3. Why?" in md
    c = conversation()[0].answer.citations[1]
    assert f"- [2] {XSS_DOC.name}, paragraph 3, characters {c.start}–{c.end}, score 0.81" in md
    assert f"  > {SCRIPT}" in md  # a Markdown file quotes the document as it is
    assert "Closest passages (not an answer):" in md and "_Error: The LLM is unreachable._" in md
    assert md.count("_mode: extractive_") == 2


def test_json_export_holds_the_full_answer_record():
    turns = conversation()
    data = json.loads(render.conversation_json(turns, now=NOW))
    assert data["exported"] == "2024-05-01T12:30:00+00:00"
    assert [t["id"] for t in data["turns"]] == ["t0", "t1", "t2"]
    first = data["turns"][0]["answer"]
    assert {k: v for k, v in first.items() if k not in ("citations", "closest")} == {
        k: v for k, v in turns[0].answer.to_dict().items() if k not in ("citations", "closest")
    }
    for row, c in zip(first["citations"], turns[0].answer.citations, strict=True):
        assert row["passage"] == c.passage and row["passage_start"] == c.passage_start
        assert row["passage"][row["start"] - row["passage_start"] :][: len(row["quote"])] == row["quote"]
    assert data["turns"][1]["answer"]["closest"][0]["passage"]
    assert data["turns"][2] == {
        "id": "t2",
        "question": "Why?",
        "answer": None,
        "error": "The LLM is unreachable.",
    }


def test_turns_survive_deepcopy_as_gradio_state_needs():
    turns = conversation()
    copied = copy.deepcopy(turns)
    assert copied == turns and copied[0].answer is not turns[0].answer
    assert render.conversation_json(copied, now=NOW) == render.conversation_json(turns, now=NOW)


# The short answer (qa.types.ShortAnswer): above the quote, and its words marked inside the sentence.

JORDAN_SENTENCE = SEED_TEXT.split("\n")[1].split("ومترجمين.")[0] + "ومترجمين."
IN_JORDAN = "في الأردن"


GUARANTEE = "fewer than 5 in 100 such answers are wrong (certified with 90% confidence on 600 questions)"
WHY_NOT = "its calibrated confidence is below the certified bar"


def short_answer(
    c: Citation, span_start: int, span: str, *, text: str, lang: str = "en", verified=True, checked=None
):
    """A short answer over `span`, which starts at document offset `span_start` inside citation `c`;
    checked (with a planted guarantee) unless told otherwise or not verified."""
    checked = verified if checked is None else checked
    return ShortAnswer(
        text=text,
        lang=lang,
        verified=verified,
        n=c.n,
        doc=c.doc,
        start=span_start,
        end=span_start + len(span),
        quote=span,
        checked=checked,
        confidence=0.97 if checked else 0.6,
        guarantee=GUARANTEE if checked else None,
        why_not=WHY_NOT if verified and not checked else None,
    )


def jordan_turn(
    *, lang: str = "en", text: str = "In Jordan", verified: bool = True, note=None, checked=None
) -> Turn:
    """'Where is the joint operations room?' cited as [2] (after LAVROV [1]), its short answer «في الأردن»."""
    c1, c2 = cite(SEED_TEXT, LAVROV), cite(SEED_TEXT, JORDAN_SENTENCE, n=2, paragraph=1)
    at = SEED_TEXT.find(IN_JORDAN, c2.start)  # test setup only: the renderer works from offsets
    assert c2.start < at < c2.end
    short = short_answer(
        c2, at, IN_JORDAN, text=text, lang="ar" if not verified else lang, verified=verified, checked=checked
    )
    lead, more = (
        ("According to the article", " It also says") if lang == "en" else ("بحسب المقال", " ويذكر أيضاً")
    )
    body = f"{lead} [1]: «{LAVROV}»{more} [2]: «{JORDAN_SENTENCE}»"
    return Turn(
        "t",
        "Where is the operations room?",
        replace(answer(body, [c1, c2], lang=lang, note=note), short_answer=short),
    )


def nested_marks(html: str, outer: str) -> list[tuple[str, str, str]]:
    """(before, span, after) of each sentence mark `outer` holding a <mark class="qa-span">."""
    pattern = rf'{re.escape(outer)}([^<]*)<mark class="qa-span">([^<]*)</mark>([^<]*)</mark>'
    return re.findall(pattern, html)


def test_short_answer_sits_above_the_quote_with_its_badge_and_caption():
    html = render.answer_html(jordan_turn())
    short = re.search(r'<div class="qa-short" data-n="2" data-checked="true">(.*?)</div></div>', html).group(
        1
    )
    assert "Short answer · machine rendering of the cited words" in short
    assert f'<div class="qa-short-check qa-checked" dir="ltr">Checked: {GUARANTEE}' in short
    badge = '<span class="qa-ref" title="000_30343400e31c82a3.txt, ¶2">[2]</span>'
    assert f'<bdi class="qa-short-text" dir="ltr" lang="en">In Jordan</bdi> {badge}' in short
    assert html.index('class="qa-short"') < html.index('class="qa-lead"') < html.index('class="qa-quote"')
    assert "qa-streaming" not in html and "qa-working" not in html

    arabic = render.answer_html(jordan_turn(lang="ar", text=IN_JORDAN))
    assert arabic.startswith('<div class="qa-msg qa-answer" dir="rtl"><div class="qa-short" data-n="2"')
    assert "جواب مختصر · مأخوذ حرفياً من النص" in arabic and "Short answer" not in arabic
    assert f'<bdi class="qa-short-text" dir="rtl" lang="ar">{IN_JORDAN}</bdi>' in arabic


def test_short_answer_words_are_marked_inside_the_cited_sentence_in_chat_and_sources():
    turn = jordan_turn()
    before, after = JORDAN_SENTENCE.split(IN_JORDAN)
    for html, outer in (
        (render.answer_html(turn), '<mark class="qa-cited">'),
        (render.sources_html(turn), "<mark>"),
    ):
        assert nested_marks(html, outer) == [(before, IN_JORDAN, after)]  # only in citation [2]
        assert html.count('<mark class="qa-span">') == 1
    # the [1] sentence is not marked in the chat, and marked plainly in the sources
    assert f"«{LAVROV}»" in render.answer_html(turn) and f"<mark>{LAVROV}</mark>" in render.sources_html(turn)


def test_span_is_placed_by_its_offsets_not_by_searching_its_words():
    c = cite(SEED_TEXT, JORDAN_SENTENCE)
    second = SEED_TEXT.find(" من ", SEED_TEXT.find(" من ", c.start) + 1) + 1  # the second «من»: «من البلدين»
    assert c.start < second < c.end and SEED_TEXT[second : second + 10] == "من البلدين"
    turn = Turn("t", "q", answer(f"[1]: «{JORDAN_SENTENCE}»", [c]))
    turn = replace(turn, answer=replace(turn.answer, short_answer=short_answer(c, second, "من", text="من")))
    [(before, span, after)] = nested_marks(render.sources_html(turn), "<mark>")
    assert span == "من" and before.endswith("وأجهزة المخابرات ") and after == " البلدين، ومترجمين."
    assert nested_marks(render.answer_html(turn), '<mark class="qa-cited">') == [(before, span, after)]

    # Offsets that disagree with the quote (or point into another citation) mark nothing inside it.
    for wrong in (
        short_answer(c, second + 1, "من", text="من"),
        short_answer(c, c.end - 1, "من", text="من"),
        replace(short_answer(c, second, "من", text="من"), n=2),
    ):
        bad = replace(turn, answer=replace(turn.answer, short_answer=wrong))
        assert "qa-span" not in render.answer_html(bad) + render.sources_html(bad)
        assert "qa-cited" not in render.answer_html(bad)
        assert f"<mark>{JORDAN_SENTENCE}</mark>" in render.sources_html(bad)


def test_unchecked_short_answer_shows_the_arabic_words_and_the_note_once():
    note = "No English wording is shown: the rendering did not match the cited words closely enough. …"
    turn = jordan_turn(text=IN_JORDAN, verified=False, note=note)
    html = render.answer_html(turn)
    short = re.search(r'<div class="qa-short" data-n="2" data-checked="false">(.*?)</div></div>', html).group(
        1
    )
    assert f'<bdi class="qa-short-text" dir="rtl" lang="ar">{IN_JORDAN}</bdi>' in short
    assert "qa-short-check" not in short  # a rule failed: the note says why, no certification line
    assert '<div class="qa-short-caption">Short answer · the cited words as written</div>' in short
    shown = re.search(r'<bdi class="qa-short-text"[^>]*>([^<]*)</bdi>', html).group(1)
    assert shown == IN_JORDAN and not re.search(r"[A-Za-z]", shown)  # never an unchecked rendering
    assert html.count(note) == 1 and f'<div class="qa-note" dir="ltr">{note}</div></div>' in html
    assert html.index(note) < html.index('class="qa-lead"')  # the note sits with the short answer
    assert nested_marks(html, '<mark class="qa-cited">')  # the words are highlighted in the sentence


def test_hostile_span_stays_escaped():
    c = cite(XSS_TEXT, SCRIPT, doc="<b>notice</b>.md")
    span = "<script>window.__xss = 1;"
    at = XSS_TEXT.find(span, c.start)
    hostile = replace(
        answer(f"According to the article [1]: «{SCRIPT}»", [c], note="<i>note</i>"),
        short_answer=short_answer(c, at, span, text=span),
    )
    turn = Turn("t", "What did the attacker write?", hostile)
    page = render.answer_html(turn) + render.sources_html(turn)
    assert tags(page) <= OWN_TAGS
    escaped = "&lt;script&gt;window.__xss = 1;"
    assert f'<bdi class="qa-short-text" dir="ltr" lang="en">{escaped}</bdi>' in page
    assert page.count(f'<mark class="qa-span">{escaped}</mark>') == 2  # chat and sources
    assert "Short answer · the document's own words" in page and "&lt;i&gt;note&lt;/i&gt;" in page


def test_a_draft_is_still_working_until_the_final_answer():
    final = jordan_turn()
    draft = replace(final, answer=replace(final.answer, short_answer=None), draft=True)
    html = render.answer_html(draft)
    assert html.startswith('<div class="qa-msg qa-answer qa-streaming" dir="ltr">')
    assert "Finding the short answer…" in html and "qa-short" not in html
    # It says what it is before its quote: it may still end as an abstention.
    assert html.index("Not yet an answer") < html.index(
        "qa-quote"
    ) and "qa-draft-title" not in render.answer_html(final)
    arabic = replace(draft, answer=replace(draft.answer, answer_lang="ar"))
    assert "جارٍ البحث عن الجواب المختصر…" in render.answer_html(arabic)
    assert "qa-streaming" not in render.answer_html(final) and "qa-working" not in render.answer_html(final)
    abstained = Turn(
        "t", "q", answer("The article does not answer this question.", abstained=True), draft=True
    )
    assert 'class="qa-msg qa-abstain qa-streaming"' in render.answer_html(abstained)


def test_a_verified_short_answer_without_a_certified_bar_says_it_is_not_checked_and_why():
    html = render.answer_html(jordan_turn(checked=False))
    short = re.search(r'<div class="qa-short" data-n="2" data-checked="false">(.*?)</div></div>', html).group(
        1
    )
    assert '<bdi class="qa-short-text" dir="ltr" lang="en">In Jordan</bdi>' in short
    assert f'<div class="qa-short-check qa-not-checked" dir="ltr">Not checked: {WHY_NOT}' in short
    assert "Checked:" not in html


def test_exports_include_the_short_answer():
    note = "No English wording is shown: the rendering was not in English. …"
    checked, unchecked = (
        jordan_turn(),
        replace(jordan_turn(text=IN_JORDAN, verified=False, note=note), id="u"),
    )
    md = render.conversation_markdown([checked, unchecked], now=NOW)
    assert f"Short answer: In Jordan [2] (checked: {GUARANTEE})\n" in md
    assert f"Short answer: {IN_JORDAN} [2] (not checked: {note})\n" in md
    uncertified = render.conversation_markdown([jordan_turn(checked=False)], now=NOW)
    assert f"Short answer: In Jordan [2] (not checked: {WHY_NOT})\n" in uncertified
    assert md.index("Short answer: In Jordan") < md.index("According to the article")
    assert md.count(note) == 1
    data = json.loads(render.conversation_json([checked, unchecked], now=NOW))
    c2 = checked.answer.citations[1]
    at = c2.start + JORDAN_SENTENCE.index(IN_JORDAN)
    assert data["turns"][0]["answer"]["short_answer"] == {
        "text": "In Jordan",
        "lang": "en",
        "verified": True,
        "checked": True,
        "confidence": 0.97,
        "guarantee": GUARANTEE,
        "why_not": None,
        "source": {"n": 2, "doc": c2.doc, "start": at, "end": at + len(IN_JORDAN), "quote": IN_JORDAN},
    }
    assert SEED_TEXT[at : at + len(IN_JORDAN)] == IN_JORDAN
    assert data["turns"][1]["answer"]["short_answer"]["verified"] is False


# Translations of cited sentences (qa.translate.Translation), under their passages, on request.

KREMLIN_SENTENCE = next(s for s in re.split(r"(?<=\.)\s+", SEED_TEXT) if "الكرملين" in s)
CHECKED = Translation("Russian Foreign Minister Sergei Lavrov announced", "en", True)
FAILED = Translation(None, "en", False, "the model did not reply in English")


def translated_turn(first=CHECKED, second=FAILED, *, lang: str = "en") -> Turn:
    c1 = replace(cite(SEED_TEXT, LAVROV), translation=first)
    c2 = replace(cite(SEED_TEXT, KREMLIN_SENTENCE, n=2, paragraph=3), translation=second)
    text = f"According to the article [1]: «{LAVROV}» It also says [2]: «{KREMLIN_SENTENCE}»"
    return Turn("tr", "What did the Kremlin deny?", answer(text, [c1, c2], lang=lang))


def articles(html: str) -> list[str]:
    return re.findall(r'<article class="qa-src" data-n="\d+">(.*?)</article>', html)


def test_checked_translation_sits_under_its_passage_with_its_label_and_direction():
    first, _ = articles(render.sources_html(translated_turn()))
    assert first.index("</p>") < first.index('class="qa-translation"')  # under the passage
    assert (
        '<div class="qa-translation" dir="ltr"><div class="qa-translation-label">'
        f"Machine translation, checked word by word against the sentence ({wordcheck.record_note()})</div>"
        '<p class="qa-translation-text" dir="ltr" lang="en">Russian Foreign Minister Sergei Lavrov announced'
        "</p></div>"
    ) in first
    assert "No translation shown" not in first
    # Arabic from an English document under an Arabic answer: right to left, labelled in Arabic.
    english = "The Kremlin denied the reports."
    c = replace(
        Citation(1, "en.txt", "en.txt#0", 0, len(english), english, 0, 0.7, english, 0),
        translation=Translation("نفى الكرملين التقارير.", "ar", True),
    )
    html = render.sources_html(
        Turn("a", "ماذا نفى الكرملين؟", answer(f"بحسب المقال [1]: «{english}»", [c], lang="ar"))
    )
    assert (
        '<div class="qa-translation" dir="rtl"><div class="qa-translation-label">ترجمة آلية، مطابَقة مع الجملة'
        in html
    )
    assert '<p class="qa-translation-text" dir="rtl" lang="ar">نفى الكرملين التقارير.</p>' in html


def test_failed_translation_shows_its_note_and_never_text():
    _, second = articles(render.sources_html(translated_turn()))
    assert (
        '<div class="qa-translation qa-translation-none" dir="ltr">No translation shown: '
        '<bdi dir="ltr">the model did not reply in English</bdi></div>'
    ) in second
    assert "qa-translation-text" not in second
    # Text that did not pass its check is never shown, whatever it holds.
    unchecked = Translation("An unchecked guess", "en", False, None)
    html = render.sources_html(translated_turn(first=unchecked))
    assert "An unchecked guess" not in html and "No translation shown: " in html
    assert "the translation could not be checked" in html
    md = render.conversation_markdown([translated_turn(first=unchecked)], now=NOW)
    assert "An unchecked guess" not in md


def test_translation_and_note_are_escaped():
    hostile = Translation('<script>window.__xss = 1</script> <img src=x onerror="alert(1)">', "en", True)
    note = Translation(None, "en", False, "it cites <b>[7]</b>")
    turn = translated_turn(first=hostile, second=note)
    page = render.sources_html(turn)
    assert tags(page) <= OWN_TAGS
    assert (
        "&lt;script&gt;window.__xss = 1&lt;/script&gt; &lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in page
    )
    assert "it cites &lt;b&gt;[7]&lt;/b&gt;" in page


def test_translations_leave_the_chat_bubble_and_already_translated_answers_alone():
    turn = translated_turn()
    plain = replace(
        turn,
        answer=replace(
            turn.answer, citations=tuple(replace(c, translation=None) for c in turn.answer.citations)
        ),
    )
    # An English reader with no checked short answer reads the cited sentence's checked translation
    # in the bubble itself (qa.extractive.readable makes it); the others live in Sources only.
    bubble = render.answer_html(turn)
    first = turn.answer.citations[0].translation.text
    assert bubble.count('class="qa-translation"') == 1 and render.esc(first) in bubble
    assert "qa-translation" not in render.answer_html(plain)
    checked = replace(
        turn, answer=replace(turn.answer, short_answer=replace(jordan_turn().answer.short_answer, n=1))
    )
    assert "qa-translation" not in render.answer_html(checked)  # a checked short answer needs none
    assert [c.n for c in render.untranslated(plain.answer)] == [1, 2]
    assert render.untranslated(turn.answer) == [] and render.untranslated(None) == []
    arabic = replace(plain, answer=replace(plain.answer, answer_lang="ar"))
    assert render.untranslated(arabic.answer) == []  # Arabic quotes under an Arabic answer
    assert render.translate_label("en") == "Translate cited sentences"
    assert render.translate_label("ar") == "Translate cited sentences · ترجمة الجمل المقتبسة"
    working = render.sources_html(plain, working=render.translating_text(plain.answer))
    assert '<div class="qa-working" dir="ltr">Translating 2 cited sentence(s)' in working
    assert working.index("qa-working") > working.rindex("</article>")


def test_exports_include_translations():
    turn = translated_turn()
    md = render.conversation_markdown([turn], now=NOW)
    assert (
        f"  > {LAVROV}\n  Machine translation (en), checked word by word against the sentence "
        f"({wordcheck.record_note()}): "
        "Russian Foreign Minister Sergei Lavrov announced\n"
    ) in md
    assert f"  > {KREMLIN_SENTENCE}\n  _No translation shown: the model did not reply in English_\n" in md
    rows = json.loads(render.conversation_json([turn], now=NOW))["turns"][0]["answer"]["citations"]
    assert [r["translation"] for r in rows] == [
        {"text": CHECKED.text, "lang": "en", "verified": True, "note": None},
        {"text": None, "lang": "en", "verified": False, "note": FAILED.note},
    ]


# A document's overview (qa.overview.central_sentences): its central sentences, escaped, in order.


def evidence(text: str, quote: str, *, doc: str = SEED.name, paragraph: int = 0) -> Evidence:
    start = text.index(quote)
    return Evidence(doc, f"{doc}#0", paragraph, start, start + len(quote), quote, 0.9, 0.9, 0.0)


def test_overview_lists_the_central_sentences_escaped_in_their_own_direction():
    sentences = [evidence(SEED_TEXT, LAVROV), evidence(SEED_TEXT, KREMLIN_SENTENCE, paragraph=3)]
    html = render.overview_html(sentences)
    assert html.startswith('<div class="qa-overview"><div class="qa-overview-caption">Its most central')
    items = re.findall(r'<li dir="rtl">([^<]*) <span class="qa-meta">¶(\d+)</span></li>', html)
    assert items == [(LAVROV, "1"), (render.esc(KREMLIN_SENTENCE), "4")]
    hostile = render.overview_html(
        [evidence(XSS_TEXT, SCRIPT, doc="x.md"), evidence(XSS_TEXT, IMG, doc="x.md")]
    )
    assert tags(hostile) <= OWN_TAGS | {"ol", "li"} and "&lt;script&gt;window.__xss = 1;" in hostile
    assert "no sentences" in render.overview_html([])


def test_documents_table_says_which_documents_get_an_overview():
    docs = [DocInfo(id=f"d{i}.txt", sha256="0", chunks=1, chars=10) for i in range(12)]
    assert "Overviews below: the first 10 of 12 documents." in render.documents_html(docs, overviews=10)
    assert "Overviews below" not in render.documents_html(docs[:10], overviews=10)


# ---------------------------------------------------------------------------------------------
# Direction by dominant script, and a document's own bracketed numbers

RUSSIA_NOW = "Russia-Now.com: ماذا نفى الموقع؟"
OPEN_DATA = "Open Data Day 2025 هو اسم الفعالية التي نظمتها المكتبة الوطنية في عمّان هذا العام."
# A Markdown document whose cited sentence quotes speech in «» and carries its own reference mark.
MD_TEXT = (
    "# تقرير\n\n"
    "قال الوزير «نحن ملتزمون بالاتفاق» في المؤتمر الصحفي [1] الذي عقد أمس في موسكو.\n\n"
    "[1]: https://example.com/press «المؤتمر»\n"
)
MD_QUOTE = "قال الوزير «نحن ملتزمون بالاتفاق» في المؤتمر الصحفي [1] الذي عقد أمس في موسكو."
MD_REFERENCE = "[1]: https://example.com/press «المؤتمر»"


def test_direction_follows_the_dominant_script_not_the_first_letter():
    assert (
        render.text_dir(RUSSIA_NOW) == 'dir="rtl"' and render.text_dir("What did لافروف say?") == 'dir="ltr"'
    )
    assert render.user_html(RUSSIA_NOW) == f'<div class="qa-msg qa-user" dir="rtl">{RUSSIA_NOW}</div>'
    c = cite(OPEN_DATA, OPEN_DATA)
    turn = Turn("t", "What is the event called?", answer(f"According to the article [1]: «{OPEN_DATA}»", [c]))
    bubble, sources = render.answer_html(turn), render.sources_html(turn)
    assert bubble.startswith('<div class="qa-msg qa-answer" dir="ltr">')  # the English answer
    assert f'<div class="qa-quote" dir="rtl">«{OPEN_DATA}»</div>' in bubble  # its Arabic quote
    assert f'<p class="qa-passage" dir="rtl"><mark>{OPEN_DATA}</mark></p>' in sources
    # The CSS isolates each piece and lets `dir` decide (unicode-bidi: plaintext would go by the first letter).
    assert "plaintext" not in render.CSS and ".qa-passage { unicode-bidi: isolate;" in render.CSS


def test_a_documents_own_bracketed_numbers_are_not_citations():
    c1 = cite(MD_TEXT, MD_QUOTE, doc="report.md", paragraph=1)
    c2 = cite(MD_TEXT, MD_REFERENCE, n=2, doc="report.md", paragraph=2)
    extractive = f"According to the article [1]: «{MD_QUOTE}» It also says [2]: «{MD_REFERENCE}»"
    generative = f"{MD_QUOTE} [1] {MD_REFERENCE} [2]"  # an LLM quoting without guillemets
    for text in (extractive, generative):
        html = render.answer_html(Turn("t", "ماذا قال الوزير؟", answer(text, [c1, c2], lang="ar")))
        badges = re.findall(r'<span class="qa-ref"[^>]*>\[(\d+)\]</span>', html)
        assert badges == ["1", "2", "1", "2"]  # the answer's two markers and the sources line, nothing more
        assert "المؤتمر الصحفي [1] الذي" in html and "[1]: https://example.com/press" in html
    one = render.answer_html(Turn("t", "q", answer(extractive, [c1])))
    assert f'<bdi dir="rtl">«{render.esc(MD_QUOTE)}»</bdi>' in one  # one quote, its own «» included
    assert render.split_quotes("[1]: «a «b» c»", ["a «b» c"]) == ["[1]: ", "a «b» c", ""]


def test_a_scanned_citation_is_shown_boxed_on_its_page_image_with_its_confidence(tmp_path):
    from PIL import Image

    from qa.types import Recognition

    image = tmp_path / "page-1.png"
    Image.new("L", (700, 1000), 255).save(image)  # the stored display copy: half the OCR'd size
    quote = "لم يبحثا فكرة التّعاون العسكري المباشر"
    found = Recognition(
        1, str(image), 1400, 2000, ((900, 400, 1200, 450), (500, 400, 880, 450)), 0.87, 0.41, "فكرة"
    )
    c = replace(cite(SEED_TEXT, quote), recognition=found, page=1)
    html = render.sources_html(Turn("t", "q", answer("[1]", [c], note="[1] was read by OCR")))
    figure = re.search(r'<figure class="qa-scan"><img src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)
    assert figure is not None
    png = Image.open(io.BytesIO(base64.b64decode(figure.group(1))))
    # the region around the two boxes (scaled to the display copy), with a margin of 1.5 lines
    assert 150 < png.width < 700 and 25 < png.height < 200
    assert "OCR confidence 87% on average, 41% for «فكرة»" in html
    assert (
        render.scan_html(replace(c, recognition=replace(found, image=str(tmp_path / "gone.png")))).count(
            "missing"
        )
        == 1
    )
    assert render.scan_html(replace(c, recognition=None)) == ""
