"""Lists and tables as evidence (issue 32, part 3): an HTML list's items and a table's rows are
sentences of their own at exact offsets, a row read with its header row; a sentence that announces
an enumeration is cited with the items that follow it."""

from __future__ import annotations

from pathlib import Path

import pytest

from qa import ingest
from qa import text as qtext
from qa.answer import Citation
from qa.types import Answer, Item
from web import render

# The bulletin: a sentence that announces three projects, and the list right after it, with
# no whitespace between the tags.
BULLETIN = (
    '<!DOCTYPE html><html lang="ar" dir="rtl"><head><meta charset="utf-8"><title>نشرة البلدية</title>'
    '</head><body><nav><a href="/">الرئيسية</a> | <a href="/news">الأخبار</a></nav><article>'
    "<h1>نشرة البلدية الأسبوعية</h1>"
    "<p>عقد المجلس البلدي اجتماعه الدوري يوم الأحد برئاسة رئيس البلدية وحضور أعضاء المجلس.</p>"
    "<p>أعلنت البلدية عن ثلاثة مشاريع جديدة في المدينة.</p>"
    "<ul><li>إنشاء حديقة عامة في حي النزهة.</li><li>توسيع شبكة الصرف الصحي في الحي الشرقي.</li>"
    "<li>بناء مكتبة عامة قرب السوق القديم.</li></ul>"
    "<p>وقال رئيس البلدية إن العمل في المشاريع سيبدأ مطلع العام المقبل، وإن كلفتها ستغطى من موازنة "
    "البلدية.</p><p>وفي سياق آخر، دعت البلدية السكان إلى ترشيد استهلاك المياه خلال أشهر الصيف.</p>"
    "</article><footer>جميع الحقوق محفوظة</footer></body></html>"
)
PROJECTS = (
    "• إنشاء حديقة عامة في حي النزهة.",
    "• توسيع شبكة الصرف الصحي في الحي الشرقي.",
    "• بناء مكتبة عامة قرب السوق القديم.",
)
ANNOUNCES = "أعلنت البلدية عن ثلاثة مشاريع جديدة في المدينة."

HEADER = ("المحافظة", "أيام المياه في الأسبوع", "ملاحظات")
WATER_ROWS = (
    ("عمّان", "يومان", "يوم الأحد ويوم الأربعاء"),
    ("إربد", "ثلاثة أيام", "تزويد إضافي للمخيمات"),
    ("الزرقاء", "يوم واحد", "يوم الجمعة. بانتظار خط جديد"),
    ("العقبة", "سبعة أيام", "تزويد دائم من الديسي"),
)


def water_docx(path: Path) -> Path:
    """The issue's governorate table: a governorate and its days of water a week, in a .docx."""
    import docx

    document = docx.Document()
    document.add_paragraph("وزارة المياه والري")
    document.add_paragraph(
        "أعلنت الوزارة برنامج توزيع المياه على المحافظات خلال فصل الصيف، بسبب انخفاض منسوب السدود."
    )
    document.add_paragraph("ويبين الجدول التالي عدد أيام ضخ المياه في الأسبوع لكل محافظة:")
    table = document.add_table(rows=1, cols=3)
    for cell, heading in zip(table.rows[0].cells, HEADER, strict=True):
        cell.text = heading
    for row in WATER_ROWS:
        for cell, value in zip(table.add_row().cells, row, strict=True):
            cell.text = value
    document.add_paragraph("وقال الناطق باسم الوزارة إن البرنامج سيراجع في نهاية شهر آب.")
    document.add_paragraph("وتطلب الوزارة من المواطنين:")
    document.add_paragraph("الإبلاغ عن الأعطال فور حدوثها", style="List Bullet")
    document.add_paragraph("ترشيد استهلاك المياه", style="List Bullet")
    document.save(path)
    return path


def row_text(row: tuple[str, ...]) -> str:
    return " | ".join(f"{h}: {c}" for h, c in zip(HEADER, row, strict=True))


def words(text: str) -> int:
    return len(text.split())


# -- ingest: units at exact offsets ---------------------------------------------------------------


def test_html_list_items_are_units_at_exact_offsets(tmp_path):
    path = tmp_path / "bulletin.html"
    path.write_text(BULLETIN, encoding="utf-8")
    doc = ingest.read_document(path)
    assert ingest.UNIT_MARK not in doc.text
    assert [doc.text[a:b] for a, b in doc.units] == list(PROJECTS)
    # the sentence and its list stay apart: the list did not run into the sentence
    assert doc.text.index(ANNOUNCES) + len(ANNOUNCES) < doc.text.index(PROJECTS[0])
    chunks = ingest.chunk_document(doc, count_tokens=words, max_tokens=256)
    units = {u for c in chunks for u in c.units}
    assert units == set(doc.units)
    for c in chunks:
        assert set(c.units) <= set(c.sentences)


def test_docx_table_rows_are_read_with_their_header_and_list_paragraphs_are_units(tmp_path):
    doc = ingest.read_document(water_docx(tmp_path / "water.docx"))
    units = [doc.text[a:b] for a, b in doc.units]
    assert units == [row_text(r) for r in WATER_ROWS] + [
        "الإبلاغ عن الأعطال فور حدوثها",
        "ترشيد استهلاك المياه",
    ]
    assert " | ".join(HEADER) not in doc.text  # the header row is read into every row, not kept alone
    chunks = ingest.chunk_document(doc, count_tokens=words, max_tokens=256)
    sentences = [doc.text[a:b] for c in chunks for a, b in c.sentences]
    # a row is one sentence, even with a full stop inside a cell
    assert row_text(WATER_ROWS[2]) in sentences
    assert "ملاحظات: يوم الجمعة." not in sentences


def test_html_table_with_th_header_and_one_without():
    html = (
        "<p>قبل الجدول.</p><table><thead><tr><th>المشروع</th><th>الكلفة</th></tr></thead>"
        "<tbody><tr><td>الحديقة</td><td>3 ملايين</td></tr><tr><td>المكتبة</td><td></td></tr></tbody></table>"
        "<table><tr><td>2024</td><td>الميزانية</td></tr><tr><td>2025</td><td>الخطة</td></tr></table>"
    )
    text = ingest.html_to_text(html)
    lines = text.split("\n")
    assert "المشروع: الحديقة | الكلفة: 3 ملايين" in lines
    assert "المشروع: المكتبة" in lines  # an empty cell is left out
    assert "2024 | الميزانية" in lines  # a first row with digits is data, not a header


@pytest.mark.parametrize(
    ("sentence", "expected"),
    [
        (ANNOUNCES, True),
        ("وتطلب الوزارة من المواطنين:", True),
        ("The council approved three projects.", True),
        ("ويبين الجدول التالي عدد أيام ضخ المياه في الأسبوع لكل محافظة:", True),
        ("وقال رئيس البلدية إن العمل سيبدأ مطلع العام المقبل.", False),
        ("The mayor said work would start next year.", False),
    ],
)
def test_announces_enumeration(sentence, expected):
    assert qtext.announces_enumeration(sentence) is expected


# -- rendering ------------------------------------------------------------------------------------


def test_items_are_shown_a_line_each_under_their_sentence():
    items = tuple(Item(100 + 40 * i, 100 + 40 * i + len(t), t) for i, t in enumerate(PROJECTS))
    cite = Citation(1, "bulletin.html", "c1", 50, 50 + len(ANNOUNCES), ANNOUNCES, 2, 1.0, ANNOUNCES, 50)
    cite = Citation(**{**cite.__dict__, "items": items})
    from qa.answer import items_text

    text = f"بحسب المقال [1]: «{ANNOUNCES}»" + items_text(cite)
    answer = Answer("q", "ar", text, "extractive", False, (cite,), answer_lang="ar")
    html = render.answer_body(answer.answer, answer.citations)
    for item in PROJECTS:
        assert f"«{item}»</div>" in html
    assert html.count('class="qa-quote qa-item"') == 3
    sources = render.sources_html(render.Turn("t", "q", answer))
    assert sources.count("<li") == 3 and all(item in sources for item in PROJECTS)


# -- retrieval and the quote, with the real embedder and Chroma --------------------------------


@pytest.mark.full
def test_a_list_is_cited_with_its_items(assistant, tmp_path):
    path = tmp_path / "bulletin.html"
    path.write_text(BULLETIN, encoding="utf-8")
    assistant.ingest([path], progress=False)
    stored = ingest.read_document(path).text
    answer = assistant.ask("ما المشاريع الثلاثة التي أعلنتها البلدية؟")
    assert not answer.abstained
    first = answer.citations[0]
    assert first.quote == ANNOUNCES
    assert [i.text for i in first.items] == list(PROJECTS)
    for item in first.items:
        assert stored[item.start : item.end] == item.text
    # the quote shows the items under the sentence, and none of them again as a citation of its own
    assert (
        answer.answer.index(ANNOUNCES) < answer.answer.index(PROJECTS[0]) < answer.answer.index(PROJECTS[2])
    )
    assert not any(c.quote in PROJECTS for c in answer.citations[1:])
    assert answer.to_dict()["citations"][0]["items"][1]["quote"] == PROJECTS[1]


@pytest.mark.full
def test_a_table_row_answers_a_question_about_it(assistant, tmp_path):
    path = water_docx(tmp_path / "water.docx")
    assistant.ingest([path], progress=False)
    stored = ingest.read_document(path).text
    answer = assistant.ask("كم يوماً في الأسبوع تصل المياه إلى محافظة إربد؟")
    assert not answer.abstained
    first = answer.citations[0]
    assert first.quote == row_text(WATER_ROWS[1])
    assert stored[first.start : first.end] == first.quote
    # the sentence that announces the table is cited with its rows
    listed = assistant.ask("ما عدد أيام ضخ المياه في الأسبوع لكل محافظة؟")
    assert not listed.abstained
    announcing = next(c for c in listed.citations if c.items)
    assert announcing.quote == "ويبين الجدول التالي عدد أيام ضخ المياه في الأسبوع لكل محافظة:"
    assert [i.text for i in announcing.items] == [row_text(r) for r in WATER_ROWS]


def test_the_items_after_an_announcing_sentence_are_read_from_the_chunks_after_it(fast_assistant, tmp_path):
    """Plumbing (hash embedder): the list sits in its own paragraph, so in a chunk of its own."""
    from qa.retrieve import Evidence, Hit

    path = tmp_path / "bulletin.html"
    path.write_text(BULLETIN, encoding="utf-8")
    fast_assistant.ingest([path], progress=False)
    chunks = fast_assistant.store.document_chunks("bulletin.html")
    announcing = next(c for c in chunks if c.text == ANNOUNCES)
    assert not announcing.units  # the items are in the next chunk
    a, b = announcing.sentences[0]
    best = Evidence("bulletin.html", announcing.id, announcing.paragraph, a, b, ANNOUNCES, 1.0, 0.9, 0.5)
    retriever = fast_assistant.retriever
    found = retriever._with_items(best, [Hit(announcing, 1.0, 0.9, 0.9, 0.0)], retriever.lexical())
    assert [i.text for i in found.items] == list(PROJECTS)
    stored = ingest.read_document(path).text
    assert all(stored[i.start : i.end] == i.text for i in found.items)
    # a sentence that announces nothing is cited alone
    other = next(c for c in chunks if c.text.startswith("وقال رئيس البلدية"))
    a, b = other.sentences[0]
    plain = Evidence("bulletin.html", other.id, other.paragraph, a, b, other.text_of(a, b), 1.0, 0.9, 0.5)
    assert retriever._with_items(plain, [Hit(other, 1.0, 0.9, 0.9, 0.0)], retriever.lexical()).items == ()


def test_a_saved_conversation_keeps_the_items():
    from qa.conversations import answer_from_record, answer_record

    items = tuple(Item(100 + 40 * i, 100 + 40 * i + len(t), t) for i, t in enumerate(PROJECTS))
    cite = Citation(
        1, "bulletin.html", "c1", 50, 50 + len(ANNOUNCES), ANNOUNCES, 2, 1.0, ANNOUNCES, 50, items=items
    )
    answer = Answer("q", "ar", "بحسب المقال [1]", "extractive", False, (cite,), answer_lang="ar")
    assert answer_from_record(answer_record(answer)).citations[0].items == items
