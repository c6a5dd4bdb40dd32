import itertools

from qa import text


def test_normalize_folds_arabic_variants_and_digits():
    assert text.normalize("الإرهابيّين") == "الارهابيين"
    assert text.normalize("أإآٱ") == "اااا"
    assert text.normalize("مستشفى مدرسة") == "مستشفي مدرسه"
    assert text.normalize("٢٠١٦ و۳") == "2016 و3"
    assert text.normalize("كـــبير") == "كبير"  # tatweel
    assert text.normalize("Kremlin") == "kremlin"


def test_tokens_stem_and_drop_stopwords():
    assert text.tokens("نفى الكرملين الخبر") == ["نفي", "كرمل", "خبر"]
    assert text.stem("والارهابيين") == text.stem("ارهابي") == "ارهاب"
    assert "في" not in text.tokens("في سوريا")
    # the same word with and without diacritics/prefixes meets in one token
    assert text.tokens("الرّئيس") == text.tokens("رئيس")


def test_detect_language():
    assert text.detect_language("ماذا نفى الكرملين؟") == "ar"
    assert text.detect_language("What did the Kremlin deny?") == "en"
    assert text.detect_language("What did الكرملين deny?") == "en"


def test_sentences_split_on_arabic_and_latin_punctuation():
    s = "قال لافروف: “نعم”. ماذا حدث؟ لا شيء؛ انتهى! Done. Russia-Now.com is a site"
    spans = text.sentences(s)
    parts = [s[a.start : a.end] for a in spans]
    assert parts == [
        "قال لافروف: “نعم”.",
        "ماذا حدث؟",
        "لا شيء؛",
        "انتهى!",
        "Done.",
        "Russia-Now.com is a site",
    ]


def test_sentences_keep_abbreviations_and_offsets():
    s = "  Mr. Smith went to the U.S. yesterday. Then home.\n"
    spans = text.sentences(s)
    assert [s[a.start : a.end] for a in spans] == ["Mr. Smith went to the U.S. yesterday.", "Then home."]


def test_paragraphs_blank_lines_or_single_lines():
    assert [(p.start, p.end) for p in text.paragraphs("a b\n\nc\nd")] == [(0, 3), (5, 8)]
    assert [(p.start, p.end) for p in text.paragraphs("a b\nc\n")] == [(0, 3), (4, 5)]


def test_sentences_cover_the_seed_without_altering_it():
    from tests.conftest import SEED

    doc = SEED.read_text(encoding="utf-8")
    for para in text.paragraphs(doc):
        spans = text.sentences(doc, para)
        assert spans[0].start == para.start and spans[-1].end == para.end
        # nothing but whitespace between consecutive sentences
        for a, b in itertools.pairwise(spans):
            assert doc[a.end : b.start].strip() == ""
