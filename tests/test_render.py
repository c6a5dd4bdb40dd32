"""web.render without a server or a model: escaping, direction, abstention, highlights and exports.

Answers and citations are built directly (they are plain frozen dataclasses) over the seed article
and tests/fixtures/xss_notice.md, so every offset is a real offset into a real document text.
"""

from __future__ import annotations

import copy
import json
import re
from datetime import UTC, datetime
from pathlib import Path

from qa.answer import Answer, Citation
from qa.store import DocInfo
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
    quotes = re.findall(r'<div class="qa-quote" dir="auto">(.*?)</div>', html)
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
    assert f'<bdi dir="auto">«{LAVROV}»</bdi>' in render.answer_html(en)
    assert render.user_html(ar.question) == f'<div class="qa-msg qa-user" dir="auto">{ar.question}</div>'
    assert '<div class="qa-src-head" dir="rtl">' in render.sources_html(ar)
    assert '<div class="qa-src-head" dir="ltr">' in render.sources_html(en)
    assert "الفقرة 1" in render.sources_html(ar) and "paragraph 1" in render.sources_html(en)
    assert '<p class="qa-passage" dir="auto">' in render.sources_html(en)


def test_long_quotes_are_blocks_of_their_own():
    long_quote = SEED_TEXT.split("\n")[0][:200]
    turn = Turn(
        "t", "q", answer(f"According to the article [1]: «{long_quote}»", [cite(SEED_TEXT, long_quote)])
    )
    html = render.answer_html(turn)
    assert f'<div class="qa-quote" dir="auto">«{long_quote}»</div>' in html
    assert '<div class="qa-lead" dir="auto">According to the article <span class="qa-ref"' in html


def test_highlight_marks_exactly_the_cited_span_by_its_offsets():
    # "لافروف" appears several times; the citation is the second one, and <mark> must be there.
    quote = "سيرغي لافروف"
    second = cite(SEED_TEXT, quote, occurrence=1)
    first_at = SEED_TEXT.index(quote)
    assert second.start != first_at and second.passage_start <= second.start
    html = render.passage_html(second)
    before = re.search(r'<p class="qa-passage" dir="auto">(.*?)<mark>', html).group(1)
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
    assert render.answer_html(Turn("t", "q")) == '<div class="qa-msg qa-streaming" dir="auto">…</div>'
    streaming = render.answer_html(Turn("t", "q", partial="<i>Kerry</i> [1"))
    assert "qa-streaming" in streaming and "&lt;i&gt;Kerry&lt;/i&gt; [1" in streaming
    error = render.answer_html(Turn("t", "q", error="The question is <empty>."))
    assert 'class="qa-msg qa-error"' in error and "Could not answer" in error and "&lt;empty&gt;" in error
    assert (
        render.sources_html(Turn("t", "q", error="x"))
        == '<div class="qa-empty">No sources for this message.</div>'
    )
    noted = Turn("t", "q", answer(f"[1] «{LAVROV}»", [cite(SEED_TEXT, LAVROV)], note="Fell back <now>."))
    assert '<div class="qa-note" dir="auto">Fell back &lt;now&gt;.</div>' in render.answer_html(noted)
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
