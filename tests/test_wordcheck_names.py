"""The word check's name witnesses (qa.wordcheck) on the real dictionaries (FreeDict ara-eng and
eng-ara), analyser (farahidi) and romanizer: each rule lets a faithful English name pass and
still refuses a name swapped for another."""

from __future__ import annotations

import pytest

from qa import gloss, wordcheck


@pytest.fixture(autouse=True)
def dictionaries():
    assert gloss.available(), "dict-freedict-ara-eng/eng-ara are not installed (make setup installs them)"


def _name(check, text: str):
    return next(w for w in check.words if w.text == text)


def _refused_for(check, name: str) -> bool:
    return not check.ok and f"«{name}»" in check.reason


def _checked_and_swapped(source: str, faithful: str, name: str, other: str):
    """The check of `faithful`, once the same rendering with `name` swapped for `other` is refused
    for `other`: each name rule must let the right name pass and still see a wrong one."""
    swapped = wordcheck.check(faithful.replace(name, other, 1), source, align=False)
    assert _refused_for(swapped, other), swapped.reason
    return wordcheck.check(faithful, source, align=False)


def test_a_name_a_dictionary_glosses_is_supported_when_a_gloss_spells_it_alike():
    # «فاريل» is in FreeDict ('farrell'), so its skeleton alone is no witness (as «الخارجية», foreign,
    # has George's); a gloss spelled like the name is the second witness.
    source = "كان ويليام فاريل طالباً في جامعة لوفيفر"
    faithful = "William Farel was a student at Lefevre's university."
    assert _name(_checked_and_swapped(source, faithful, "Farel", "Calvin"), "Farel").witness == "name"
    george = wordcheck.check("The minister George said so.", "قالت الخارجية ذلك", align=False)
    assert _refused_for(george, "George")


def test_a_name_a_dictionary_glosses_is_supported_when_the_romanizer_spells_it_so():
    source = "قاد البعثة النبيل جان دي بيتينكور"
    faithful = "The noble Jean de Bethencourt led the expedition."
    assert _name(_checked_and_swapped(source, faithful, "Jean", "Louis"), "Jean").witness == "name"


def test_a_soft_c_and_a_written_ch_keep_their_skeleton():
    check = wordcheck.check("They met Francis and Joachim.", "التقوا فرانسيس و جواتشيم", align=False)
    assert _name(check, "Francis").supported and _name(check, "Joachim").supported
    assert _refused_for(
        wordcheck.check("They met Frank and Joachim.", "التقوا فرانسيس و جواتشيم", align=False), "Frank"
    )


def test_a_final_s_and_an_arabic_nisba_ending_do_not_hide_a_name():
    source = "احتفظوا بمرسوم نانت وحاربوا الغاليين"
    faithful = "They kept the Edict of Nantes and fought the Gaels."
    check = _checked_and_swapped(source, faithful, "Gaels", "Franks")
    assert _name(check, "Nantes").supported and _name(check, "Gaels").supported


def test_an_abbreviation_is_supported_by_its_letters_written_out_in_arabic():
    source = "أعلنت شبكة إيه بي سي أن بي سكاي بي ستبث بصيغة إتش دي"
    check = _checked_and_swapped(source, "ABC announced that BSkyB would broadcast in HD.", "ABC", "NBC")
    for name in ("ABC", "BSkyB", "HD"):
        assert _name(check, name).witness == "name", name
    assert _refused_for(wordcheck.check("ABC announced that BSkyB would broadcast in SD.", source), "SD")


def test_an_abbreviation_is_supported_by_what_it_stands_for():
    source = "استمع البرلمان البريطاني إلى ادعاء"
    check = _checked_and_swapped(source, "The UK parliament heard a claim.", "UK", "US")
    assert _name(check, "UK").witness == "dictionary"


def test_a_hyphenated_name_is_supported_part_by_part():
    source = "الطيار الألماني هانز-جواتشيم مارسيل"
    check = _checked_and_swapped(
        source, "The German pilot Hans-Joachim Marseille.", "Hans-Joachim", "Hans-Ulrich"
    )
    assert _name(check, "Hans-Joachim").witness == "name" and check.ok, check.reason


def test_an_ordinary_word_of_a_supported_name_is_checked_as_a_word():
    # "Fanfare" of "Huguenot Fanfare" is an English word: a content word (it counts in the share),
    # not a name the source must spell, because the name's other word is supported.
    source = "عزفت فرقة الهوغونوت في المدينة"
    check = wordcheck.check("The Huguenot Fanfare band played in the city.", source, align=False)
    assert _name(check, "Huguenot").supported
    assert _name(check, "Fanfare").kind == "content"
    swapped = wordcheck.check("The Calvinist Fanfare band played in the city.", source, align=False)
    assert _refused_for(swapped, "Calvinist") and _name(swapped, "Fanfare").kind == "name"


def test_a_word_capitalised_only_to_start_a_sentence_is_not_a_name():
    check = wordcheck.check(
        "Earlier settlers had begun arriving.", "كان المستوطنون الأوائل قد بدأوا في الوصول", align=False
    )
    assert _name(check, "Earlier").kind == "content"
    start = wordcheck.check("Rollo settled in Normandy.", "استقر فرانسيس في نورماندي", align=False)
    assert _refused_for(start, "Rollo")


def test_a_gloss_read_backwards_from_eng_ara_spells_a_name_too():
    # «فيرجين» has no ara-eng entry; eng-ara glosses 'virginian' with it.
    source = "وافقت كل من بي سكاي بي و فيرجين ميديا على إنهاء الدعاوى"
    faithful = "Both BSkyB and Virgin Media agreed to end the lawsuits."
    assert _name(_checked_and_swapped(source, faithful, "Virgin", "Vodafone"), "Virgin").witness == "name"


def test_a_word_that_only_looks_like_a_name_is_not_a_left_out_name():
    # «سبيل» of «على سبيل المثال» (for example): the romanizer knows it as a name, Sebil.
    source = "على سبيل المثال، قال لافروف ذلك"
    # The source's share bar is not what this checks: «سبيل» and «ذلك» are rendered by no word here.
    check = wordcheck.check("For example, Lavrov said so.", source, align=False, min_source_share=0.0)
    assert check.ok, check.reason
    assert not [g for g in check.left_out if g.word == "سبيل" and g.witness == "name"]
    swapped = wordcheck.check("For example, Putin said so.", source, align=False)
    assert _refused_for(swapped, "Putin")


def test_a_comparative_starting_a_sentence_is_not_a_name():
    check = wordcheck.check(
        "Later, in 1901, welding was shown.", "وفيما بعد، في عام 1901، تم عرض اللحام", align=False
    )
    assert _name(check, "Later").kind == "content"
