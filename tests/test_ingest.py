"""Reading files and chunking: every format, every bad input, offsets that point into the text."""

from __future__ import annotations

import itertools

import pytest

from qa import ingest
from qa.errors import InputError
from tests.conftest import SEED


def make_pdf(text: str) -> bytes:
    """A minimal one-page PDF with one line of Latin text (Helvetica)."""
    content = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out, offsets = b"%PDF-1.4\n", []
    for i, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % i + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return out


def test_reads_every_supported_format(tmp_path):
    import docx

    (tmp_path / "a.txt").write_text("نص عربي.\n\nSecond paragraph.", encoding="utf-8")
    (tmp_path / "b.md").write_text("# Title\n\nSome *markdown* text.", encoding="utf-8")
    (tmp_path / "c.html").write_text(
        "<html><head><title>t</title><script>alert(1)</script></head>"
        "<body><p>First &amp; one.</p><p>مرحبا</p></body></html>",
        encoding="utf-8",
    )
    (tmp_path / "d.pdf").write_bytes(make_pdf("The PDF says hello."))
    document = docx.Document()
    document.add_paragraph("Word paragraph one.")
    document.add_paragraph("فقرة ثانية.")
    document.save(tmp_path / "e.docx")

    texts = {p.name: ingest.read_document(p).text for p in sorted(tmp_path.iterdir())}
    assert texts["a.txt"] == "نص عربي.\n\nSecond paragraph."
    assert texts["b.md"] == "# Title\n\nSome *markdown* text."
    assert texts["c.html"] == "First & one.\n\nمرحبا"  # no title, no script
    assert "The PDF says hello." in texts["d.pdf"]
    assert texts["e.docx"] == "Word paragraph one.\n\nفقرة ثانية."


def test_document_id_is_file_name_and_hash_tracks_content(tmp_path):
    path = tmp_path / "note.txt"
    path.write_text("one", encoding="utf-8")
    first = ingest.read_document(path)
    path.write_text("two", encoding="utf-8")
    second = ingest.read_document(path)
    assert first.id == second.id == "note.txt"
    assert first.sha256 != second.sha256


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("empty.txt", b"", "is empty"),
        ("blank.txt", b"  \n\t\n", "contains no text"),
        ("binary.txt", bytes(range(256)) * 4, "binary"),
        ("utf16.txt", "نص عربي".encode("utf-16"), "UTF-16"),
        ("arabic.txt", ("نص عربي طويل بترميز ويندوز " * 5).encode("windows-1256"), "windows-1256"),
        ("image.gif", b"GIF89a", "unsupported file type"),
        ("image.png", b"\x89PNG\r\n", "is an image, and reading it needs OCR, which is off"),
        ("broken.pdf", b"%PDF-1.4 not really", "not a readable PDF"),
        ("broken.docx", b"PK\x03\x04 not a zip", "not a readable .docx"),
    ],
)
def test_bad_files_get_one_clear_sentence(tmp_path, name, data, message):
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(InputError, match=message) as info:
        ingest.read_document(path)
    assert "\n" not in str(info.value)


def test_explicit_encoding_reads_windows_1256_and_utf16(tmp_path):
    text = "أعلن وزير الخارجية الروسي"
    (tmp_path / "a.txt").write_bytes(text.encode("windows-1256"))
    (tmp_path / "b.txt").write_bytes(text.encode("utf-16"))
    assert ingest.read_document(tmp_path / "a.txt", encoding="windows-1256").text == text
    assert ingest.read_document(tmp_path / "b.txt", encoding="utf-16").text == text


SEED_TEXT = SEED.read_text(encoding="utf-8").strip()
FRENCH = "Le ministre a déclaré mercredi à Genève : « c'est un début », évoquant l'été prochain."


@pytest.mark.parametrize(
    ("data", "encoding"),
    [
        (SEED_TEXT.encode("windows-1256"), "windows-1256"),
        (SEED_TEXT.encode("windows-1256"), "cp1256"),
        (SEED_TEXT.encode("utf-16"), "utf-16"),
        (SEED_TEXT.encode("utf-8"), "utf-8"),
        (FRENCH.encode("latin-1"), "latin-1"),
    ],
    ids=["seed-windows-1256", "seed-cp1256", "seed-utf-16", "seed-utf-8", "french-latin-1"],
)
def test_explicit_encoding_that_fits_reads_the_text(data, encoding):
    text = FRENCH if encoding == "latin-1" else SEED_TEXT
    assert ingest.decode_text(data, "a.txt", encoding=encoding) == text


@pytest.mark.parametrize(
    ("data", "encoding", "fits"),
    [
        (SEED_TEXT.encode("windows-1256"), "latin-1", "windows-1256"),  # mess ratio 2.74
        (SEED_TEXT.encode("windows-1256"), "cp1252", "windows-1256"),
        ("أعلن وزير الخارجية الروسي".encode("windows-1256"), "latin-1", "windows-1256"),  # 5 words: 1.79
        (SEED_TEXT.encode("utf-8"), "latin-1", "utf-8"),
        (SEED_TEXT.encode("utf-8"), "windows-1256", "utf-8"),
        (FRENCH.encode("utf-8"), "latin-1", "utf-8"),  # mostly ASCII: 0.58
    ],
    ids=[
        "seed-cp1256-latin-1",
        "seed-cp1256-cp1252",
        "line-cp1256-latin-1",
        "seed-utf-8-latin-1",
        "seed-utf-8-windows-1256",
        "french-utf-8-latin-1",
    ],
)
def test_explicit_encoding_that_yields_mojibake_is_refused_naming_the_one_that_fits(
    tmp_path, data, encoding, fits
):
    path = tmp_path / "article.txt"
    path.write_bytes(data)
    with pytest.raises(InputError) as info:
        ingest.read_document(path, encoding=encoding)
    assert str(info.value) == (
        f"article.txt read as {encoding} looks like mojibake; it looks like {fits}: --encoding {fits} in "
        f"the CLI, encoding={fits} in the API."
    )


def test_mojibake_no_encoding_reads_better_is_kept_with_a_warning(caplog):
    data = bytes(range(128, 256)) * 20  # mess ratio 5.2 as latin-1; charset-normalizer finds nothing
    assert ingest.decode_text(data, "noise.txt", encoding="latin-1") == data.decode("latin-1")
    assert "noise.txt read as latin-1 looks like mojibake, and no other encoding" in caplog.text


def test_mojibake_leaves_the_index_unchanged(fast_seeded, tmp_path):
    before = fast_seeded.documents()
    path = tmp_path / "cp1256.txt"  # not the seed's text, which would be skipped as a duplicate
    path.write_bytes("عقد الاجتماع في عمّان يوم الثلاثاء وحضره وزراء الخارجية.".encode("windows-1256"))
    with pytest.raises(InputError, match="looks like windows-1256"):
        fast_seeded.ingest([path], encoding="latin-1", progress=False)
    assert fast_seeded.documents() == before
    fast_seeded.ingest([path], encoding="windows-1256", progress=False)  # the named one is taken
    assert {d.id for d in fast_seeded.documents()} == {d.id for d in before} | {"cp1256.txt"}


def test_oversized_file_is_refused(tmp_path):
    path = tmp_path / "big.txt"
    path.write_text("x" * 2_000_000, encoding="utf-8")
    with pytest.raises(InputError, match="over the 1 MB limit"):
        ingest.read_document(path, max_mb=1)


def _chunks(doc, max_tokens=60, overlap=1):
    # whitespace words as tokens: deterministic and model-free for the chunker's own logic
    return ingest.chunk_document(
        doc, count_tokens=lambda t: len(t.split()), max_tokens=max_tokens, overlap_sentences=overlap
    )


BUDGET = 70


def test_chunks_respect_paragraphs_offsets_and_overlap():
    doc = ingest.read_document(SEED)
    chunks = _chunks(doc, max_tokens=BUDGET)
    for c in chunks:
        assert doc.text[c.start : c.end] == c.text
        assert c.sentences[0][0] == c.start and c.sentences[-1][1] == c.end
        assert "\n" not in c.text  # never crosses a paragraph boundary (single-line paragraphs)
        assert sum(len(doc.text[a:b].split()) for a, b in c.sentences) <= BUDGET or len(c.sentences) == 1
    # every sentence of the document is in some chunk
    covered = {s for c in chunks for s in c.sentences}
    from qa import text

    every = {(s.start, s.end) for p in text.paragraphs(doc.text) for s in text.sentences(doc.text, p)}
    assert covered == every
    # consecutive windows of one paragraph share one sentence where the budget leaves room for it
    same_para = [(a, b) for a, b in itertools.pairwise(chunks) if a.paragraph == b.paragraph]
    assert same_para, "the small token budget must split some paragraph"
    overlapping = 0
    for a, b in same_para:
        shared = set(a.sentences) & set(b.sentences)
        assert shared in (set(), {a.sentences[-1]})
        if not shared:  # no room: the last sentence plus the next one exceed the budget
            words = len(doc.text[a.sentences[-1][0] : b.sentences[0][1]].split())
            assert len(a.sentences) == 1 or words > BUDGET
        overlapping += bool(shared)
    assert overlapping > 0


def test_chunk_ids_derive_from_content():
    doc = ingest.read_document(SEED)
    assert [c.id for c in _chunks(doc)] == [c.id for c in _chunks(doc)]
    assert len({c.id for c in _chunks(doc)}) == len(_chunks(doc))
