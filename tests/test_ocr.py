"""Scans and photos (issue 22): Arabic OCR on ingest, citations with their page and word boxes.

The scans are made from text we have (bench/scans.py: the seed article typeset in DejaVu Sans at
300 dpi), and read by the real tesseract with its Arabic model. Checked: a scanned PDF and a PNG
are indexed, and the mission's question is cited from the recognised text at its offsets, on the
right page, with boxes inside the typeset lines of the cited paragraph; a hostile image is refused
with the index unchanged; a mixed PDF keeps its text layer; a file is recognised once.
"""

from __future__ import annotations

import io
import json

import pytest
from pypdf import PdfReader, PdfWriter
from rapidfuzz.distance import Levenshtein

from bench.scans import image_pdf, typeset
from qa import ingest
from qa import ocr as qocr
from qa import text as qtext
from qa.errors import InputError
from tests.conftest import SEED
from tests.test_cli import run_qa
from tests.test_formats import make_pdf

KREMLIN = "What did the Kremlin deny?"
# The words of the seed's answer to KREMLIN that OCR must keep (its diacritics it may drop).
KREMLIN_WORDS = ("الكرملين", "يبحثا", "فكرة", "العسكري", "المباشر")
PARAGRAPHS = [p for p in SEED.read_text(encoding="utf-8").split("\n") if p.strip()]


# Measured on the seed's first page in DejaVu Sans at 300 dpi: 3.3% as a PNG, 4.6% through an
# image-only PDF (JPEG inside); a bound of twice the worst.
MAX_CER = 0.09


def cer(hypothesis: str, reference: str) -> float:
    """Character error rate: edits from `hypothesis` to `reference` over its length, whitespace runs as one space."""
    hyp, ref = " ".join(hypothesis.split()), " ".join(reference.split())
    return Levenshtein.distance(hyp, ref) / max(len(ref), 1)


def inside(box, outer, margin: int = 12) -> bool:
    return (
        box[0] >= outer[0] - margin
        and box[1] >= outer[1] - margin
        and box[2] <= outer[2] + margin
        and box[3] <= outer[3] + margin
    )


@pytest.fixture(scope="module")
def seed_pages():
    """The seed article typeset on A4 pages at 300 dpi (and where each paragraph's lines are)."""
    return typeset(PARAGRAPHS, dpi=300, font="dejavu")


# -- text from tesseract's words (no tesseract) ---------------------------------------------------


def test_page_text_gives_every_word_exact_offsets_and_paragraphs():
    data = {
        "level": [1, 5, 5, 5, 5],
        "block_num": [0, 1, 1, 1, 2],
        "par_num": [0, 1, 1, 1, 1],
        "line_num": [0, 1, 1, 2, 1],
        "text": ["", "في", "موسكو", "ﺍﻟﻴﻮﻡ", "انتهى"],
        "conf": [-1, 91, 80.5, 40, 96],
        "left": [0, 300, 100, 200, 250],
        "top": [0, 10, 10, 60, 200],
        "width": [400, 50, 150, 100, 90],
        "height": [300, 30, 30, 30, 30],
    }
    text, page = qocr.page_text(data, page=3, image="p.png")
    assert text == "في موسكو اليوم\n\nانتهى"  # lines of a paragraph joined, presentation forms folded
    assert [text[w.start : w.end] for w in page.words] == ["في", "موسكو", "اليوم", "انتهى"]
    assert page.words[1].box == (100, 10, 250, 40)
    assert page.words[1].confidence == pytest.approx(0.805)
    assert (page.page, page.width, page.height) == (3, 400, 300)


# -- real tesseract --------------------------------------------------------------------------------


@pytest.mark.full
def test_png_scan_is_read_with_each_word_boxed_inside_its_typeset_line(tmp_path, seed_pages):
    first = seed_pages[0]
    path = tmp_path / "clipping.png"
    first.image.save(path)
    doc = ingest.read_document(path, ocr=qocr.Recogniser(tmp_path / "ocr"))
    typed = "\n".join(line.text for line in first.lines)
    assert cer(doc.text, typed) < MAX_CER
    assert doc.page_starts == (0,)
    (page,) = doc.ocr
    assert page.page == 1 and (page.width, page.height) == first.image.size
    assert len(page.words) > 100
    for word in page.words:
        assert doc.text[word.start : word.end].strip() == doc.text[word.start : word.end] != ""
        assert 0 <= word.confidence <= 1
    lines = [line.box for line in first.lines]
    boxed = sum(any(inside(w.box, line) for line in lines) for w in page.words)
    assert boxed >= 0.95 * len(page.words)


@pytest.mark.full
def test_scanned_pdf_answers_the_mission_question_from_the_scan_with_page_and_boxes(
    assistant, tmp_path, seed_pages
):
    path = tmp_path / "scan.pdf"
    path.write_bytes(image_pdf([p.image for p in seed_pages]))
    assert not "".join(page.extract_text() for page in PdfReader(path).pages).strip()  # no text layer
    report = assistant.ingest([path], progress=False)
    assert report.added == ("scan.pdf",)
    answer = assistant.ask(KREMLIN)
    assert not answer.abstained
    cite = answer.citations[0]
    assert all(word in cite.quote for word in KREMLIN_WORDS[1:]), cite.quote
    chunk = next(c for c in assistant.store.document_chunks("scan.pdf") if c.id == cite.chunk_id)
    assert chunk.text_of(cite.start, cite.end) == cite.quote  # exact offsets into the recognised text
    # the page and the boxes: those of the typeset lines of the paragraph the sentence is from
    kremlin = next(i for i, p in enumerate(PARAGRAPHS) if "لم يبحثا فكرة" in p)
    typed_page = next(
        n for n, p in enumerate(seed_pages, 1) if any(line.paragraph == kremlin for line in p.lines)
    )
    assert cite.page == typed_page
    found = cite.recognition
    assert found is not None and found.page == typed_page
    lines = [line.box for line in seed_pages[typed_page - 1].lines if line.paragraph == kremlin]
    assert len(found.boxes) >= len(cite.quote.split()) - 1
    assert all(any(inside(box, line) for line in lines) for box in found.boxes)
    assert 0.5 < found.confidence <= 1 and found.lowest <= found.confidence
    assert found.lowest_word and found.lowest_word in cite.quote
    assert "read by OCR" in answer.note and f"p. {typed_page}" in answer.note
    png = qocr.highlight(found)
    assert png is not None and png.startswith(b"\x89PNG")


@pytest.mark.full
def test_scanned_png_through_the_cli_carries_its_ocr_confidence(env, tmp_path, seed_pages):
    page = next(p for p in seed_pages if any("لم يبحثا فكرة" in line.text for line in p.lines))
    path = tmp_path / "photo.png"
    page.image.save(path)
    ingested = run_qa("ingest", str(path), env=env)
    assert ingested.returncode == 0, ingested.stderr
    # the fast lane's hash embedder abstains on an English question: its closest passages are cited too
    data = json.loads(run_qa("ask", KREMLIN, "--json", "--mode", "extractive", env=env).stdout)
    cited = [c for c in data["citations"] + data["closest"] if "ocr" in c]
    assert cited, data
    assert all(0 < c["ocr"]["confidence"] <= 1 and c["ocr"]["boxes"] for c in cited)
    assert "read by OCR" in data["note"]


@pytest.mark.full
def test_a_file_is_recognised_once(tmp_path, seed_pages, monkeypatch):
    path = tmp_path / "page.png"
    seed_pages[-1].image.save(path)
    first = ingest.read_document(path, ocr=qocr.Recogniser(tmp_path / "ocr"))
    monkeypatch.setenv("PATH", "/nonexistent")  # tesseract cannot run now: only what was kept can serve
    qocr._TESSERACT_OK.clear()
    again = ingest.read_document(path, ocr=qocr.Recogniser(tmp_path / "ocr"))
    assert again.text == first.text and again.ocr == first.ocr
    with pytest.raises(InputError, match="tesseract is not installed"):
        ingest.read_document(path, ocr=qocr.Recogniser(tmp_path / "elsewhere"))
    qocr._TESSERACT_OK.clear()


@pytest.mark.full
def test_mixed_pdf_keeps_its_text_layer_and_reads_the_scanned_page(tmp_path, seed_pages):
    writer = PdfWriter()
    layered = "The annual report of the city council, with its budget for the schools of the city."
    for data in (make_pdf([layered]), image_pdf([seed_pages[0].image])):
        for page in PdfReader(io.BytesIO(data)).pages:
            writer.add_page(page)
    buffer = io.BytesIO()
    writer.write(buffer)
    path = tmp_path / "mixed.pdf"
    path.write_bytes(buffer.getvalue())
    doc = ingest.read_document(path, ocr=qocr.Recogniser(tmp_path / "ocr"))
    first, second = doc.text[: doc.page_starts[1]].strip(), doc.text[doc.page_starts[1] :]
    assert first == layered  # the text layer, as written
    assert [p.page for p in doc.ocr] == [2]
    assert all(w.start >= doc.page_starts[1] for w in doc.ocr[0].words)
    assert cer(second, "\n".join(line.text for line in seed_pages[0].lines)) < MAX_CER
    assert doc.page_at(doc.ocr[0].words[0].start) == 2


# -- refusals --------------------------------------------------------------------------------------


def test_an_image_over_the_pixel_limit_is_refused_by_its_header_with_the_index_unchanged(
    fast_seeded, tmp_path
):
    from PIL import Image

    before = [(d.id, d.sha256) for d in fast_seeded.documents()]
    big, bomb = tmp_path / "big.png", tmp_path / "bomb.png"
    Image.new("1", (8_000, 8_000), 1).save(big)  # 64 million pixels: over our bound, under Pillow's
    Image.new("1", (20_000, 20_000), 1).save(bomb)  # 400 million pixels in a few kilobytes
    assert bomb.stat().st_size < 200_000
    for path, size in ((big, "8000 × 8000"), (bomb, "over 179 million")):
        with pytest.raises(
            InputError, match=f"{size} pixels, over the limit of 40 million a page"
        ) as refused:
            fast_seeded.ingest([path], progress=False)
        assert "\n" not in str(refused.value)
    assert [(d.id, d.sha256) for d in fast_seeded.documents()] == before
    assert not any((tmp_path / "ocr").rglob("*.json"))  # nothing was recognised


def test_damaged_and_foreign_images_are_one_sentence(tmp_path):
    recogniser = qocr.Recogniser(tmp_path / "ocr")
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 64)
    with pytest.raises(InputError, match=r"broken\.png is not a readable image"):
        ingest.read_document(broken, ocr=recogniser)
    with pytest.raises(InputError, match="needs OCR, which is off"):
        ingest.read_document(broken, ocr=None)


@pytest.mark.full
def test_a_transparent_png_is_read_as_black_on_white(tmp_path, seed_pages):
    from PIL import Image

    first = seed_pages[0]
    top = first.image.crop((0, 0, first.image.width, first.lines[2].box[3] + 40))
    clear = Image.new("RGBA", top.size, (0, 0, 0, 0))
    clear.putalpha(top.point(lambda v: 255 - v))  # the letters opaque black, the paper transparent
    path = tmp_path / "transparent.png"
    clear.save(path)
    doc = ingest.read_document(path, ocr=qocr.Recogniser(tmp_path / "ocr"))
    assert cer(doc.text, " ".join(line.text for line in first.lines[:3])) < MAX_CER


def test_a_missing_tesseract_model_is_named(tmp_path, seed_pages):
    path = tmp_path / "page.png"
    seed_pages[0].image.resize((800, 1131)).save(path)
    with pytest.raises(InputError, match="lacks its zzz model: apt-get install"):
        ingest.read_document(path, ocr=qocr.Recogniser(tmp_path / "ocr", languages="ara+zzz"))


# -- repairs (issue 32, part 2) ---------------------------------------------------------------------

JORDAN = "Where would the joint operations room be?"


def test_repairs_put_back_the_arabic_comma_and_keep_known_words():
    if not qocr.LEXICON.available():
        pytest.fail("hunspell-ar is not installed (`make setup` installs it)")
    words = ["مشتركء", "وإنشاء", "الإرهاب”,", "التقاليد.", "المتحدة.", "ترفيهية:", "(بالإنجليزية:"]
    confidences = [0.41, 0.92, 0.88, 0.64, 0.92, 0.32, 0.93]
    assert qocr.repair(words, confidences) == [
        "مشترك،",  # a comma read as a hamza: «مشترك» is a word, «مشتركء» is not
        "وإنشاء",  # a word that ends in a hamza stays
        "الإرهاب”،",  # a Latin comma after a closing quote
        "التقاليد،",  # a full stop tesseract was unsure of
        "المتحدة.",  # a full stop it was sure of stays
        "ترفيهية،",  # a colon it was unsure of
        "(بالإنجليزية:",  # a colon it was sure of stays
    ]
    assert qocr.repair(words, confidences, repairs=()) == words
    # a letter misread by its dots: put right only where the page reads the word elsewhere
    assert qocr.repair(["الثعاون", "موسكو"], [0.6, 0.93], repairs=("dots",)) == ["الثعاون", "موسكو"]
    assert qocr.repair(["الثعاون", "التّعاون"], [0.6, 0.37], repairs=("dots",)) == ["التعاون", "التّعاون"]
    assert qocr.repair(["الثعاون", "التّعاون"], [0.93, 0.37], repairs=("dots",)) == ["الثعاون", "التّعاون"]


def test_repaired_words_keep_exact_offsets_and_their_boxes():
    data = {
        "width": [400, 50, 150, 100],
        "height": [100, 20, 20, 20],
        "block_num": [0, 1, 1, 1],
        "par_num": [0, 1, 1, 1],
        "line_num": [0, 1, 1, 1],
        "text": ["", "سوريا", "مشتركء", "وإنشاء"],
        "conf": [-1, 93, 41, 92],
        "left": [0, 300, 150, 10],
        "top": [0, 10, 10, 10],
    }
    text, page = qocr.page_text(data, page=1, image="p.png")
    assert text == "سوريا مشترك، وإنشاء"
    assert [text[w.start : w.end] for w in page.words] == ["سوريا", "مشترك،", "وإنشاء"]
    assert page.words[1].box == (150, 10, 300, 30) and page.words[1].confidence == 0.41


def test_unknown_repairs_are_one_sentence():
    with pytest.raises(InputError, match="QA_OCR_REPAIRS names spelling"):
        qocr.repair_names("marks,spelling")


@pytest.mark.full
def test_a_scanned_article_at_150_dpi_answers_like_the_typed_one(assistant, tmp_path):
    """The issue's example: the operations room in Jordan and the Kremlin's denial, typeset clean at
    150 dpi, ingested as an image-only PDF, answers "Where would the joint operations room be?" with
    the Jordan sentence, as the typed paragraphs do."""
    paragraphs = [PARAGRAPHS[1], PARAGRAPHS[5]]
    assert "الأردن" in paragraphs[0] and "الكرملين" in paragraphs[1]
    typed = tmp_path / "typed" / "article.txt"
    typed.parent.mkdir()
    typed.write_text("\n".join(paragraphs), encoding="utf-8")
    assistant.ingest([typed], progress=False)
    expected = assistant.ask(JORDAN)
    assert not expected.abstained and "الأردن" in expected.citations[0].quote
    assert assistant.remove("article.txt")

    scan = tmp_path / "scan.pdf"
    scan.write_bytes(image_pdf([p.image for p in typeset(paragraphs, dpi=150)], dpi=150))
    assistant.settings = assistant.settings.model_copy(update={"ocr_dpi": 150})
    assistant.ingest([scan], progress=False)
    answer = assistant.ask(JORDAN)
    assert not answer.abstained, answer.note
    cite = answer.citations[0]
    assert "الأردن" in cite.quote and "غرفة" in cite.quote
    chunk = next(c for c in assistant.store.document_chunks("scan.pdf") if c.id == cite.chunk_id)
    assert chunk.text_of(cite.start, cite.end) == cite.quote
    # the sentence as typed, but for what OCR still misreads (its diacritics, a letter or two)
    typed_sentence = expected.citations[0].quote
    assert Levenshtein.normalized_distance(cite.quote, typed_sentence) < 0.05


# -- Latin words in an Arabic page (issue 32, part 2: the "latin" repair) ----------------------------

BASE_REPAIRS = tuple(r for r in qocr.DEFAULT_REPAIRS if r != "latin")


def test_latin_suspects_are_words_read_as_digits_or_symbols(monkeypatch):
    assert qocr.latin_suspect("11311150115215", 0.53)  # «Harrison's Confessions» as the Arabic model read it
    assert qocr.latin_suspect("معع18)", 0.0)  # «(Recep»: Arabic letters glued to digits
    assert qocr.latin_suspect("8111", 0.88)  # «giri», read as a number the model was sure of
    assert not qocr.latin_suspect("الإرهاب”،", 0.2)  # Arabic letters and marks only
    assert not qocr.latin_suspect("(بالإنجليزية:", 0.93)
    # a plausible number read surely enough is skipped, were the bar under 1 (it is not: see qa.ocr)
    monkeypatch.setattr(qocr, "LATIN_SURE_NUMBER", 0.8)
    assert not qocr.latin_suspect("(1946),", 0.92)
    assert not qocr.latin_suspect("2014م,", 0.84)
    assert not qocr.latin_suspect("37,547,686", 0.93)
    assert qocr.latin_suspect("1946", 0.5)  # a number, but read unsure
    assert qocr.latin_suspect("0357", 0.94)  # a leading zero: not a number as news prints one


def test_latin_readings_replace_their_words_left_to_right_with_exact_offsets():
    # one right-to-left line: «يوم» «B'Av» «Tu» «وهو» «,Noua» «(1954)» «2019» as tesseract orders it
    data = {
        "level": [1, 5, 5, 5, 5, 5, 5, 5],
        "block_num": [0, 1, 1, 1, 1, 1, 1, 1],
        "par_num": [0, 1, 1, 1, 1, 1, 1, 1],
        "line_num": [0, 1, 1, 1, 1, 1, 1, 1],
        "text": ["", "يوم", "88757", "111", "وهو", "710113", "7الى", "1019"],
        "conf": [-1, 93, 69, 75, 96, 0, 18, 40],
        "left": [0, 900, 780, 700, 600, 450, 300, 100],
        "top": [0, 10, 10, 10, 10, 10, 10, 10],
        "width": [1000, 60, 100, 60, 50, 120, 100, 100],
        "height": [100, 30, 30, 30, 30, 30, 30, 30],
        # the English model's readings (`_read_page` keeps them): row -> (reading, confidence)
        "latin": {
            "2": ["B'Av", 0.95],
            "3": ["Tu", 0.96],
            "5": [".Noua", 0.76],
            "6": ["abagudl", 0.2],
            "7": ["2019", 0.9],
        },
    }
    text, page = qocr.page_text(data, page=1, image="p.png", repairs=("latin",))
    # the run «B'Av» «Tu» put back left to right; the stop printed left of «Noua» ends it; an unsure
    # reading and a reading in digits leave the Arabic model's word
    assert text == "يوم Tu B'Av وهو Noua. 7الى 1019"
    assert [text[w.start : w.end] for w in page.words] == [
        "يوم",
        "Tu",
        "B'Av",
        "وهو",
        "Noua.",
        "7الى",
        "1019",
    ]
    assert page.words[1].box == (700, 10, 760, 40) and page.words[1].confidence == 0.96  # Tu's own box
    assert page.words[2].box == (780, 10, 880, 40) and page.words[2].confidence == 0.95
    assert page.words[5].confidence == 0.18  # not replaced: the Arabic model's confidence
    without, _ = qocr.page_text(data, page=1, image="p.png", repairs=())
    assert without == "يوم 88757 111 وهو 710113 7الى 1019"


@pytest.mark.full
@pytest.mark.parametrize("dpi", [300, 150])
def test_a_latin_word_in_an_arabic_scan_is_read_intact(tmp_path, dpi):
    """An Arabic sentence with Latin words (typeset in DejaVu Sans, as the other scans here): the
    Arabic model alone reads them as digits and symbols; with the "latin" repair they come back
    whole, in their order, each boxed inside its typeset line."""
    paragraphs = [
        "وفي رومانيا يعتبر العيد التقليدي للمحبين هو Dragobete وهو اليوم الذي يتم الاحتفال به في "
        "الرابع والعشرين من شهر فبراير.",
        "ويطلق على هذه الشيكولاتة في اليابان اسم giri choko وتهديها النساء إلى زملائهن في العمل.",
    ]
    (page,) = typeset(paragraphs, dpi=dpi, font="dejavu")
    path = tmp_path / "latin.png"
    page.image.save(path)
    doc = ingest.read_document(path, ocr=qocr.Recogniser(tmp_path / "ocr", dpi=dpi))
    assert "Dragobete" in doc.text and "giri choko" in doc.text, doc.text
    assert cer(doc.text, "\n".join(line.text for line in page.lines)) < MAX_CER
    lines = [line.box for line in page.lines]
    for latin in ("Dragobete", "giri", "choko"):
        (word,) = [w for w in doc.ocr[0].words if doc.text[w.start : w.end] == latin]
        assert any(inside(word.box, line) for line in lines)
        assert word.confidence >= qocr.LATIN_TRUST
    # without the repair (the same kept recognition), the Arabic model's digits and symbols
    before = ingest.read_document(path, ocr=qocr.Recogniser(tmp_path / "ocr", dpi=dpi, repairs=BASE_REPAIRS))
    assert "Dragobete" not in before.text and "giri" not in before.text and "choko" not in before.text
    assert before.text.split()[:7] == doc.text.split()[:7]  # the Arabic words before it alike


# -- a paragraph run on over a page break or a block of tesseract's (issue 32: "pages", "blocks") ----

# Lines typeset one a line (DejaVu Sans, 300 dpi), each nearly the column's width (1473-1610 px): the
# first sentence runs from the first page on to the second, which ends with a full stop; the third
# page starts a paragraph of its own.
RUN_ON_LINES = [
    "وفي اليابان ابتكرت واحدة من شركات الحلوى عادة إعطاء الشيكولاتة للرجال",
    "في الرابع عشر من شهر فبراير وأصبحت النساء ملزمات بإهداء قطع من",
    "الشيكولاتة إلى زملائهن في العمل وإلى أصدقائهن من الرجال في اليوم نفسه",
    "ويرد الرجال الهدية في الرابع عشر من شهر مارس بحلوى من غير الشيكولاتة.",
    "وفي كوريا الجنوبية يحتفل الناس بالرابع عشر من كل شهر من شهور السنة",
    "ويسمى الرابع عشر من شهر أبريل اليوم الأسود لمن لم يتلق هدية في العيدين.",
]


def test_runs_on_needs_an_open_end_a_full_last_line_and_a_text_that_goes_on():
    full, short, column = [(100, 0, 1000, 40), (1010, 0, 1900, 40)], [(1500, 0, 1900, 40)], (90, 1910)
    assert qocr.runs_on("الشيكولاتة في", full, column, "عيد الحب")
    assert qocr.runs_on("عام", full, column, "1922، والتي")  # a line opening with a number
    assert not qocr.runs_on("الشيكولاتة.", full, column, "عيد الحب")  # a sentence ended
    assert not qocr.runs_on("الحب؟", full, column, "عيد")
    assert not qocr.runs_on("طهران.[26]", full, column, "لم يكن")  # a reference after the stop
    assert not qocr.runs_on("في", short, column, "عيد الحب")  # the paragraph's last line, or a heading
    assert not qocr.runs_on("في", full, column, "• عيد الحب")  # a list item starts
    assert not qocr.runs_on("في", [], column, "عيد")


def test_blocks_that_split_a_paragraph_in_a_page_are_joined_with_exact_offsets():
    # block 1: two full lines, the second ending mid-sentence; block 2: the paragraph's last line, then
    # a full line ending with a full stop; block 3: a short heading; block 4 a paragraph after it
    words = [
        (1, 1, "وأصبحت", 1500, 10), (1, 1, "النساء", 100, 10),
        (1, 2, "ملزمات", 1500, 60), (1, 2, "بإهداء", 100, 60),
        (2, 1, "الشيكولاتة.", 1200, 110),
        (2, 2, "ويرد", 1500, 160), (2, 2, "الرجال.", 100, 160),
        (3, 1, "عنوان", 1500, 210),
        (4, 1, "وفي", 1500, 260), (4, 1, "كوريا", 100, 260),
    ]  # fmt: skip
    data = {
        "level": [1] + [5] * len(words),
        "block_num": [0] + [w[0] for w in words],
        "par_num": [0] + [1] * len(words),
        "line_num": [0] + [w[1] for w in words],
        "text": [""] + [w[2] for w in words],
        "conf": [-1] + [95] * len(words),
        "left": [0] + [w[3] for w in words],
        "top": [0] + [w[4] for w in words],
        "width": [2000] + [400] * len(words),
        "height": [400] + [30] * len(words),
    }
    text, page = qocr.page_text(data, page=1, image="p.png", repairs=("blocks",))
    assert text == "وأصبحت النساء ملزمات بإهداء الشيكولاتة. ويرد الرجال.\n\nعنوان\n\nوفي كوريا"
    assert [text[w.start : w.end] for w in page.words] == [w[2] for w in words]
    without, _ = qocr.page_text(data, page=1, image="p.png", repairs=())
    assert without == "وأصبحت النساء ملزمات بإهداء\n\nالشيكولاتة. ويرد الرجال.\n\nعنوان\n\nوفي كوريا"


@pytest.mark.full
def test_a_paragraph_run_on_over_a_page_break_is_one_paragraph(tmp_path):
    """Three scanned pages (an image-only PDF, real tesseract), read with "pages" and "blocks": the
    paragraph that runs on from the first page to the second comes back as one paragraph, joined by
    a space at the page's start; the second page ends with a full stop, so the third still starts a
    paragraph of its own."""
    images = []
    for lines in (RUN_ON_LINES[0:2], RUN_ON_LINES[2:4], RUN_ON_LINES[4:6]):
        (page,) = typeset(lines, dpi=300, font="dejavu")
        images.append(page.image.crop((0, 0, page.image.width, page.lines[-1].box[3] + 240)))
    path = tmp_path / "pages.pdf"
    path.write_bytes(image_pdf(images))
    # "pages" is on by default, "blocks" is not (see qa.ocr.REPAIRS); tesseract makes each of these lines a paragraph
    # of its own, and "blocks" joins those of a page
    blocks = (*(r for r in qocr.DEFAULT_REPAIRS if r != "pages"), "blocks")  # without pages: the break stays
    doc = ingest.read_document(path, ocr=qocr.Recogniser(tmp_path / "ocr", repairs=(*blocks, "pages")))
    text, (_, second, third) = doc.text, doc.page_starts
    assert text[second - 1] == " " and text[third - 2 : third] == "\n\n", text
    # the second page's last line is as full as the first's: its full stop alone keeps the break
    body = text[second : third - 2]
    assert body.endswith(".")
    assert qocr.page_break((body[:-1], doc.ocr[1]), (text[third:], doc.ocr[2]), ("pages",)) == " "
    paragraphs = [text[p.start : p.end] for p in qtext.paragraphs(text)]
    assert len(paragraphs) == 2
    assert cer(paragraphs[0], " ".join(RUN_ON_LINES[0:4])) < MAX_CER
    assert cer(paragraphs[1], " ".join(RUN_ON_LINES[4:6])) < MAX_CER
    # every word at exact offsets on its own page
    assert [p.page for p in doc.ocr] == [1, 2, 3]
    for page in doc.ocr:
        for word in page.words:
            assert doc.page_at(word.start) == page.page
            assert doc.text[word.start : word.end].strip() == doc.text[word.start : word.end] != ""
    # the same recognition without "pages": a paragraph break at every page's start
    split = ingest.read_document(path, ocr=qocr.Recogniser(tmp_path / "ocr", repairs=blocks))
    assert split.text == text[: second - 1] + "\n\n" + text[second:]
    assert len(qtext.paragraphs(split.text)) == 3
