"""The dictionary witness (qa.glossary) on FreeDict's real Arabic-English dictionary."""

from __future__ import annotations

import pytest

from qa import glossary


@pytest.fixture(scope="module", autouse=True)
def _dictionary():
    assert glossary.available(), "dict-freedict-ara-eng is not installed (make setup installs it)"


@pytest.mark.parametrize("mark", ["،", "؛", "؟", "٪"])
def test_arabic_punctuation_is_not_part_of_the_word(mark):
    # «الجمعة،»: the Arabic comma sits in the Arabic Unicode block; read as part of the word it hid
    # Friday, and "Friday" was called a contradiction of «يوم الجمعة،» (issue 30).
    source = f"أعلن الكرملين يوم الجمعة{mark} أن"
    assert "friday" in glossary.source_glosses(source)
    assert glossary.witness("On Friday", source).contradicted == ()
    assert glossary.witness("On Sunday", source).contradicted == ("Sunday",)


def test_arabic_words_are_split_at_punctuation_and_digits():
    assert glossary.ARABIC_WORD.findall("الجمعة،السبت؛ ٢٠١٦ «الأحد»؟") == ["الجمعة", "السبت", "الأحد"]
