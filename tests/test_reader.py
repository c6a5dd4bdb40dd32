"""The reader: short answers located in the cited sentence, checked, streamed after the quote.

Fast tests plant the model's reply with the `scripted` backend (tests/fakes.py) and check the
plumbing and the checks that need no model; full tests use the real embedder for the rendering
check and the real local LLM for the answers themselves.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from qa import answer_checks, reader, spans
from qa import reading as qreading
from qa.stream import Draft
from tests.conftest import SEED
from tests.fakes import ScriptedChat

TEXT = SEED.read_text(encoding="utf-8")


def _reply(n: int, span: str, answer: str) -> str:
    return json.dumps({"n": n, "span": span, "answer": answer}, ensure_ascii=False)


@pytest.fixture
def planted(fast_seeded):
    """The fast assistant on the seed, never abstaining on retrieval (hash vectors score low)."""
    fast_seeded.settings = fast_seeded.settings.model_copy(
        update={"abstain_threshold": -1.0, "abstain_threshold_ar": -1.0, "short_answer": "on"}
    )
    ScriptedChat.script.clear()
    yield fast_seeded
    ScriptedChat.script.clear()


# Locating spans ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sentence", "span", "expected"),
    [
        ("قال إنّ الغرفة في الأردن.", "في الاردن", "في الأردن"),  # hamza form folded
        ("لم يبحثا فكرة التّعاون العسكريّ المباشر", "التعاون العسكري", "التّعاون العسكريّ"),  # shadda
        (
            "هذا «الخبير في منطقة الشرق الأوسط» كما قال",
            "الخبير في منطقة الشرق الاوسط",
            "الخبير في منطقة الشرق الأوسط",
        ),
        ("وقال الخبير كايل أورتون إن", "كيل أورتون", "كايل أورتون"),  # a dropped letter: fuzzy
        ("The room is in Jordan, he said.", "jordan", "Jordan"),
        ("نفى الكرملين الخبر", "باريس", None),
    ],
)
def test_find_span_maps_normalised_matches_to_exact_offsets(sentence, span, expected):
    found = spans.find_span(sentence, span)
    if expected is None:
        assert found is None
        return
    start, end, _ = found
    assert sentence[start:end] == expected


def test_answer_type_and_repetition_checks():
    assert not answer_checks.fits_question("How old is Sergei Lavrov?", "وزير الخارجية الروسي")
    assert answer_checks.fits_question("How old is he?", "يبلغ 70 عاما")
    # An age is not "after hours of talks" (a time word is not an age): the seed's unanswerable u01.
    assert not answer_checks.fits_question("How old is Sergei Lavrov?", "بعد ساعات طويلة من المفاوضات")
    assert not answer_checks.fits_question("كم عمر سيرغي لافروف؟", "بعد ساعات طويلة من المفاوضات")
    assert answer_checks.fits_question("كم عمر الرئيس؟", "خمسة وستون عاما")
    assert answer_checks.fits_question("متى وصل كيري؟", "يوم الجمعة")
    assert not answer_checks.fits_question("متى وصل كيري؟", "وزير الخارجية")
    # «في» ("in") is no time word: «ألفي» (two thousand) without its "article" once made it one, and a
    # place answered "when" (the calibration set: «متى ولد عباس بن فرناس؟» got «في رندة بإسبانيا»).
    assert not answer_checks.fits_question("متى ولد عباس بن فرناس ؟", "في رندة بإسبانيا")
    assert not answer_checks.fits_question("When was he born?", "في رندة بإسبانيا")
    assert answer_checks.fits_question("متى ولد؟", "في العام ألفين")
    # Plural time words and decades named in words answer "when" (dev: «تدريجيا على مدى سنوات»,
    # «في أوائل التسعينيات»).
    assert answer_checks.fits_question("when do the symptoms develop?", "تدريجيا على مدى سنوات")
    assert answer_checks.fits_question("متى نقلت الأخبار؟", "في أوائل التسعينيات")


def test_when_asks_a_time_only_as_the_question_word():
    """A "when" clause asks no time: "What sea bordered his empire when he died?" wants a sea."""
    assert answer_checks.asks_number_or_time("When did Syria and Egypt attack?")
    assert answer_checks.asks_number_or_time("In 1990, when was he elected?")
    assert answer_checks.asks_number_or_time("متى تولى صدام حسين رئاسة العراق؟")
    assert answer_checks.asks_number_or_time("في أي عام ولد؟")
    assert not answer_checks.asks_number_or_time(
        "What sea bordered Genghis Khan's empire to the east when he died?"
    )
    assert not answer_checks.asks_number_or_time(
        "What is it called when there is an active attempt to overthrow?"
    )
    assert answer_checks.fits_question("What sea bordered his empire when he died?", "بحر اليابان")
    assert answer_checks.fits_question("في أي عام ولد؟", "عام ألفين")
    assert answer_checks.fits_question("Who is Kyle Orton?", "الخبير")
    assert answer_checks.repeats_question(
        "Lavrov negotiated in Moscow", "Who did Lavrov negotiate with in Moscow?"
    )
    assert not answer_checks.repeats_question("John Kerry", "Who did Lavrov negotiate with in Moscow?")
    assert not answer_checks.repeats_question(
        "EU law", "Which body of EU law governs trade between member states?"
    )
    # A duration is counted, never named: a weekday answers "when", not "how long" (seed u06).
    assert not answer_checks.fits_question("How long has he been the Kremlin spokesman?", "يوم الجمعة")
    assert not answer_checks.fits_question("منذ متى يشغل منصب المتحدث باسم الكرملين؟", "يوم الجمعة")
    assert answer_checks.fits_question("منذ متى يشغل منصبه؟", "منذ عامين")
    assert answer_checks.fits_question("How long did the war last?", "أربعة أعوام كاملة")


@pytest.mark.parametrize("reply", ["not json", '{"n": -1, "span": "", "answer": ""}', '{"n": 1}'])
def test_a_reply_outside_the_schema_is_refused(reply):
    with pytest.raises(ValueError):
        qreading.parse(reply)


def test_a_reply_cut_after_its_span_keeps_the_span():
    cut = qreading.parse('{"n": 2, "span": "في \\"الأردن\\"", "answer": "in Jor')
    assert (cut.n, cut.span, cut.answer) == (2, 'في "الأردن"', "")
    with pytest.raises(ValueError):
        qreading.parse('{"n": 2, "span": "في الأر')  # the span itself is cut: nothing to check


def _tokens(reply: str, *, p_none: float, logprob: float = -0.1) -> tuple:
    """`reply` as one token per character, each with `logprob`; the first digit with P("0") = p_none."""
    import math

    from qa.llm import TokenLogprob

    rest = math.log((1 - p_none) / 9)
    digits = (math.log(p_none), *[rest] * 9)
    out, seen_digit = [], False
    for ch in reply:
        first = ch.isdigit() and not seen_digit
        seen_digit |= first
        out.append(TokenLogprob(ch.encode(), logprob, digits if first else None))
    return tuple(out)


def test_reader_signals_from_token_probabilities():
    reply = _reply(1, "في الأردن", "in Jordan")
    signals = qreading.reader_signals(_tokens(reply, p_none=0.25, logprob=-0.5))
    assert signals.answer_probability == pytest.approx(0.75)
    assert signals.span_logprob == pytest.approx(-0.5) and signals.rendering_logprob == pytest.approx(-0.5)
    none = qreading.reader_signals(_tokens(_reply(0, "", ""), p_none=0.9))
    assert none.answer_probability == pytest.approx(0.1) and none.span_logprob is None
    assert qreading.reader_signals(None) == qreading.ReaderSignals()


# The step, with planted replies ---------------------------------------------------------------------


def test_arabic_short_answer_is_the_exact_span_streamed_after_the_quote(planted):
    question = "أين ستكون غرفة العمليات المشتركة؟"
    evidence = qreading.evidence_for(planted.retriever.retrieve(question))
    words = evidence[0].text.split()[1:3]  # two words of the first sentence the reader sees
    ScriptedChat.script.append(_reply(1, " ".join(words), " ".join(words)))
    stream = planted.stream(question)
    events = list(stream.events())
    final = stream.answer()
    assert isinstance(events[0], Draft) and events[0].answer.short_answer is None
    short = final.short_answer
    assert short is not None and short.verified and short.lang == "ar"
    assert TEXT[short.start : short.end] == short.quote == short.text
    cited = final.citations[short.n - 1]
    assert cited.start <= short.start < short.end <= cited.end
    assert final.to_dict()["short_answer"]["source"]["quote"] == short.quote


def test_a_span_that_is_in_no_sentence_is_not_shown(planted):
    ScriptedChat.script.append(_reply(1, "في باريس عاصمة فرنسا", "في باريس"))
    result = planted.ask("أين ستكون غرفة العمليات المشتركة؟")
    assert result.short_answer is None and result.abstained
    assert result.note == reader.NOTES["no_answer"] and result.closest


def test_no_answer_abstains_with_the_closest_passage(planted):
    ScriptedChat.script.append(_reply(0, "", ""))
    result = planted.ask("كم عمر سيرغي لافروف؟")
    assert result.abstained and result.citations == () and result.closest


def test_an_unusable_reply_keeps_the_quote_with_a_note(planted):
    ScriptedChat.script.append("I think the answer is Jordan.")
    quoted = planted.ask("أين ستكون غرفة العمليات المشتركة؟", mode="extractive")
    assert quoted.short_answer is None and not quoted.abstained
    assert quoted.note.startswith("No short answer: the language model's reply could not be used")


def test_a_follow_up_is_read_in_the_users_own_words(planted):
    # Retrieval may join a follow-up to the previous question; the reader must still be asked the
    # follow-up, or it answers the previous question again ("Who would it include?" got "in Jordan").
    previous, follow_up = "أين ستكون غرفة العمليات المشتركة؟", "من كانت ستضم؟"
    retrieval = planted.retriever.retrieve(f"{previous} {follow_up}")
    ScriptedChat.script.append(_reply(0, "", ""))
    planted.answer_retrieval(retrieval, question=follow_up, history=[(previous, "في الأردن")])
    asked = ScriptedChat.prompts[-1][-1].content
    assert asked.endswith(follow_up) and previous not in asked


def test_a_reading_the_model_barely_preferred_to_no_answer_abstains_below_the_evidence_bar(planted):
    # Hash vectors score far below the bar (reader_abstain_below): doubt there abstains like "no answer".
    planted.settings = planted.settings.model_copy(update={"reader_min_answer_probability": 0.8})
    question = "أين ستكون غرفة العمليات المشتركة؟"
    words = " ".join(qreading.evidence_for(planted.retriever.retrieve(question))[0].text.split()[1:3])
    reply = _reply(1, words, words)
    ScriptedChat.script.append((reply, _tokens(reply, p_none=0.05)))
    sure = planted.ask(question)
    assert sure.short_answer is not None and sure.signals["answer_probability"] == pytest.approx(0.95)
    ScriptedChat.script.append((reply, _tokens(reply, p_none=0.4)))
    doubtful = planted.ask(question)
    assert doubtful.abstained and doubtful.signals["answer_probability"] == pytest.approx(0.6)
    # Above the bar the doubtful answer is shown all the same.
    planted.settings = planted.settings.model_copy(update={"reader_abstain_below": -10.0})
    ScriptedChat.script.append((reply, _tokens(reply, p_none=0.4)))
    assert planted.ask(question).short_answer is not None


def test_a_passage_without_the_questions_words_abstains_below_the_evidence_bar(planted):
    # Asked about something the article never names, the reader still copies words from the closest
    # sentence; below the bar the question's missing words (Retrieval.coverage) abstain all the same.
    planted.settings = planted.settings.model_copy(update={"reader_min_coverage": 0.4})
    question = "من هو صدام حسين؟"
    words = " ".join(qreading.evidence_for(planted.retriever.retrieve(question))[0].text.split()[1:3])
    ScriptedChat.script.append(_reply(1, words, words))
    result = planted.ask(question)
    assert result.abstained and result.signals["coverage"] < 0.4
    # Covered, the same reading is shown.
    planted.settings = planted.settings.model_copy(update={"reader_min_coverage": 0.0})
    ScriptedChat.script.append(_reply(1, words, words))
    shown = planted.ask(question)
    assert not shown.abstained and shown.short_answer is not None


def test_off_setting_gives_the_quote_alone(planted):
    planted.settings = planted.settings.model_copy(update={"short_answer": "off"})
    asked = len(ScriptedChat.prompts)
    result = planted.ask("أين ستكون غرفة العمليات المشتركة؟")
    assert result.short_answer is None and result.note is None and result.citations
    assert len(ScriptedChat.prompts) == asked  # the model was not called


# The rendering check with the real embedder -------------------------------------------------------


HARBOUR = "افتُتح الميناء الجديد عام 2016 بحضور رئيس البلدية، وهو يتسع لأربعين قارب صيد.\n"


@pytest.fixture
def harbour(assistant, tmp_path: Path):
    docs = tmp_path / "harbour"
    docs.mkdir()
    (docs / "harbour.txt").write_text(HARBOUR, encoding="utf-8")
    assistant.ingest([docs], progress=False)
    # One planted reply is one reading: the second reading is turned on by the tests that plant it.
    # The second rendering (off by default) is on here: these tests plant its reply.
    assistant.settings = assistant.settings.model_copy(
        update={
            "llm_backend": "scripted",
            "short_answer": "on",
            "reader_second_reading": False,
            "reader_retry": True,
            "auto_translate": False,
        }
    )
    ScriptedChat.script.clear()
    yield assistant
    ScriptedChat.script.clear()


def test_a_rendering_with_a_wrong_number_is_refused(harbour):
    ScriptedChat.script.extend([_reply(1, "عام 2016", "In 2015"), "In 2015"])  # the retry errs too
    result = harbour.ask("When was the new harbour opened?")
    short = result.short_answer
    assert short is not None and not short.verified
    assert short.text == short.quote == "عام 2016" and short.lang == "ar"
    # The note names the kind of failure, never the refused wording the user does not see.
    assert "number" in result.note and "2015" not in json.dumps(result.to_dict(), ensure_ascii=False)


def test_a_refused_rendering_gets_a_second_try_of_the_span_alone(harbour):
    ScriptedChat.script.extend([_reply(1, "عام 2016", "In 2015"), "In 2016"])
    result = harbour.ask("When was the new harbour opened?")
    assert result.short_answer.verified and result.short_answer.text == "In 2016"
    assert "عام 2016" in ScriptedChat.prompts[-1][-1].content  # the retry saw the span alone
    assert "harbour" not in ScriptedChat.prompts[-1][-1].content
    assert result.timings_ms["reader_retry"] > 0


def test_by_default_a_refused_rendering_gets_no_second_try(harbour):
    from qa.config import Settings

    assert Settings(_env_file=None).reader_retry is False
    harbour.settings = harbour.settings.model_copy(update={"reader_retry": False})
    ScriptedChat.script.append(_reply(1, "عام 2016", "In 2015"))
    asked = len(ScriptedChat.prompts)
    result = harbour.ask("When was the new harbour opened?")
    assert len(ScriptedChat.prompts) == asked + 1 and "reader_retry" not in result.timings_ms
    short = result.short_answer
    assert not short.verified and short.text == short.quote == "عام 2016"  # the document's words


def test_a_long_span_gets_no_second_try(harbour):
    sentence = HARBOUR.strip().rstrip(".")
    assert len(sentence.split()) > reader.RETRY_MAX_WORDS
    ScriptedChat.script.append(_reply(1, sentence, "The harbour opened in 2015 with the mayor present"))
    asked = len(ScriptedChat.prompts)
    result = harbour.ask("When was the new harbour opened?")
    assert len(ScriptedChat.prompts) == asked + 1 and "reader_retry" not in result.timings_ms
    assert not result.short_answer.verified


def test_a_second_try_is_held_to_the_stricter_bar(harbour):
    # A near miss the 1.5B model gave for «خبراء عسكريين» (military experts): close enough for the
    # first bar, not for the second.
    near_miss = {"question": "Who would it include?", "lang": "en", "services": harbour}
    refused = reader.refusal(
        "Expert engineers", "خبراء عسكريين", **near_miss, threshold=reader.RETRY_THRESHOLD
    )
    assert refused is not None and "closely enough" in refused[0]
    # The similarity bar passed it; the word check refuses it at either bar: no word says "engineers".
    first = reader.refusal("Expert engineers", "خبراء عسكريين", **near_miss)
    assert first is not None and "«engineers»" in first[1]


def test_a_faithful_rendering_is_shown(harbour):
    ScriptedChat.script.append(_reply(1, "عام 2016", "In 2016"))
    short = harbour.ask("When was the new harbour opened?").short_answer
    assert short.verified and short.text == "In 2016" and short.lang == "en"
    assert HARBOUR[short.start : short.end] == "عام 2016"


# The second reading: the same question, the evidence in reverse order ---------------------------

HARBOUR_QUESTION = "When was the new harbour opened?"
FISHERMEN = "ويعمل في الميناء ثلاثون صياداً من القرية المجاورة منذ افتتاحه.\n"


@pytest.fixture
def harbours(assistant, tmp_path: Path):
    """The harbour article with a second sentence, so that a second reading can reorder them."""
    docs = tmp_path / "harbours"
    docs.mkdir()
    (docs / "harbour.txt").write_text(HARBOUR + FISHERMEN, encoding="utf-8")
    assistant.ingest([docs], progress=False)
    assistant.settings = assistant.settings.model_copy(
        update={
            "llm_backend": "scripted",
            "short_answer": "on",
            "auto_translate": False,
            "reader_second_reading": True,  # off by default; these tests are about it
        }
    )
    ScriptedChat.script.clear()
    yield assistant
    ScriptedChat.script.clear()


def _numbers(assistant) -> tuple[int, int]:
    """The harbour sentence's number in the first and in the second reading's prompt."""
    retrieval = assistant.retriever.retrieve(HARBOUR_QUESTION)
    evidence = qreading.evidence_for(retrieval)
    first = 1 + next(i for i, e in enumerate(evidence) if "2016" in e.text)
    second = 1 + next(
        i for i, e in enumerate(qreading.second_evidence(evidence, retrieval)) if "2016" in e.text
    )
    return first, second


def _second(assistant, *replies):
    ScriptedChat.script.extend(replies)
    return assistant.ask(HARBOUR_QUESTION)


def test_two_readings_that_agree_give_a_checked_short_answer(harbours):
    first, second = _numbers(harbours)
    assert first != second  # the sentence sits elsewhere in the second reading
    result = _second(harbours, _reply(first, "عام 2016", "In 2016"), _reply(second, "2016", "2016"))
    assert result.short_answer.verified and result.short_answer.text == "In 2016"
    assert result.signals["agreement"] == 1.0
    first, second = ScriptedChat.prompts[-2][-1].content, ScriptedChat.prompts[-1][-1].content
    assert first.endswith(HARBOUR_QUESTION) and second.endswith(HARBOUR_QUESTION) and first != second
    assert result.timings_ms["reader_second"] > 0


def test_a_planted_disagreement_is_not_labelled_checked(harbours):
    first, second = _numbers(harbours)
    other = 3 - second  # the fishermen's sentence in the second reading
    result = _second(
        harbours, _reply(first, "عام 2016", "In 2016"), _reply(other, "ثلاثون صياداً", "ثلاثون صياداً")
    )
    short = result.short_answer
    assert short is not None and not short.verified and short.text == short.quote == "عام 2016"
    assert result.signals["agreement"] == 0.0 and result.signals["checked_alone"] is True
    assert result.note == reader.NOTES["disagree"]


def test_a_second_reading_that_finds_no_answer_is_a_disagreement(harbours):
    first, _ = _numbers(harbours)
    result = _second(harbours, _reply(first, "عام 2016", "In 2016"), _reply(0, "", ""))
    assert not result.short_answer.verified and result.signals["agreement"] == 0.0


def test_an_unusable_second_reading_leaves_the_answer_unchecked(harbours):
    first, _ = _numbers(harbours)
    result = _second(harbours, _reply(first, "عام 2016", "In 2016"), "I think it opened in 2016.")
    assert not result.short_answer.verified and result.signals["agreement"] is None
    assert result.note.startswith("Not checked: the second reading could not be made")


def test_the_second_reading_sees_every_sentence_elsewhere(seeded):
    retrieval = seeded.retriever.retrieve("What did the Kremlin deny?")
    evidence = qreading.evidence_for(retrieval)
    reordered = qreading.second_evidence(evidence, retrieval)
    assert len(evidence) >= 2 and reordered == evidence[::-1]
    one = qreading.second_evidence(evidence[:1], retrieval)
    assert len(one) == 2 and one[-1] == evidence[0]  # a single sentence gets a neighbour before it


HARBOUR_EN = (
    "The new harbour was opened in 2016 in the presence of the mayor, and it holds forty fishing boats."
)


@pytest.fixture(params=[False, True], ids=["dictionaries", "alignment"])
def word_alignment(request, monkeypatch):
    """The word check with and without its alignment witness (`QA_WORD_ALIGNMENT`, read by
    qa.wordcheck from the process's settings)."""
    from qa.config import get_settings

    monkeypatch.setenv("QA_WORD_ALIGNMENT", str(request.param).lower())
    get_settings.cache_clear()
    yield request.param
    get_settings.cache_clear()


def test_an_english_reader_without_a_checked_short_answer_gets_the_sentence_translated(
    harbour, word_alignment
):
    harbour.settings = harbour.settings.model_copy(update={"auto_translate": True})
    # The rendering and its second try both change the number: the short answer stays Arabic.
    ScriptedChat.script.extend([_reply(1, "عام 2016", "In 2015"), "In 2015", HARBOUR_EN])
    stream = harbour.stream(HARBOUR_QUESTION)
    events = list(stream.events())
    result = stream.answer()
    assert not result.short_answer.verified
    cited = result.citations[result.short_answer.n - 1]
    # A faithful rendering: the dictionaries support too few of its words ("opened", "presence",
    # "holds", "fishing": 60%, under the bar). Without the alignment witness (the default) it is kept
    # as a rough, word-marked rendering; with it (qa.align) those words are carried, so it is
    # checked, and each says which Arabic word it renders and that alignment did.
    t = cited.translation
    if not word_alignment:
        assert not t.verified and t.text is None and t.rough == HARBOUR_EN and "supported" in t.note
        unsupported = {w.text for w in t.check.words if w.kind == "content" and not w.supported}
        assert unsupported >= {"opened", "fishing"}
    else:
        assert t.verified and t.text == HARBOUR_EN and t.rough is None
        aligned = {w.text: w for w in t.check.words if w.witness == "alignment"}
        assert {"opened", "fishing"} <= set(aligned)
        assert cited.quote[aligned["opened"].support[0][0] - cited.start :].startswith("افتُتح")
    assert next(w for w in t.check.words if w.text == "2016").support == (
        (cited.start + 26, cited.start + 30),
    )
    assert cited.gloss and any(g.word == "الميناء" and "harbour" in g.glosses for g in cited.gloss)
    assert isinstance(events[-1], Draft) and events[-1].answer.citations[0].translation is None  # shown first
    # Kept: asked again, the sentence is not translated again.
    asked = len(ScriptedChat.prompts)
    ScriptedChat.script.extend([_reply(1, "عام 2016", "In 2015"), "In 2015"])
    again = harbour.ask(HARBOUR_QUESTION).citations[0].translation
    assert (again.text if word_alignment else again.rough) == HARBOUR_EN
    assert len(ScriptedChat.prompts) == asked + 2


def test_a_rendering_naming_another_day_is_refused_by_the_dictionary(harbour):
    from qa import glossary

    assert glossary.available(), "dict-freedict-ara-eng is not installed (make setup installs it)"
    ask = {"question": "When did Kerry arrive?", "lang": "en", "services": harbour}
    refused = reader.refusal("On Sunday", "يوم الجمعة", **ask)
    assert refused is not None and "day or month" in refused[0]
    assert reader.refusal("On Friday", "يوم الجمعة", **ask) is None


def test_a_name_only_the_question_holds_never_supports_a_rendering(harbour):
    # Asked about a person the article never mentions, the reader took another speaker's words and
    # put the asked person's name in front; the name check let it through because the name was in
    # the question (the new user's report in issue 20).
    span = "اتفقتا على خطوات ملموسة لإنقاذ التهدئة في سوريا"
    question = "What did Sergei Shoigu say about the talks?"
    ask = {"question": question, "lang": "en", "services": harbour}
    refused = reader.refusal(
        "Sergei Shoigu: agreed on concrete steps to save the truce in Syria", span, **ask
    )
    assert refused is not None and "name" in refused[0]


@pytest.mark.xfail(
    strict=True,
    reason="known defect (issue 30): a short answer's wording has only the dictionary witnesses, and "
    "FreeDict has neither 'military' for «عسكري» nor 'concrete' for «ملموسة» nor 'truce' for «التهدئة». "
    "The alignment witness (qa.align) supports 'military' and 'truce' in sentence translations but is "
    "not asked for a short answer: in a span of a word or two the mutual pair is forced ('Expert "
    "engineers' for «خبراء عسكريين»: 'engineers' aligns at 0.77). Sentences: 4% of reference "
    "translations pass at the bars fitted on the model's own English (target 70%), docs/measurements.md",
)
def test_faithful_renderings_pass_the_word_check(harbour):
    ask = {"question": "Who would it include?", "lang": "en", "services": harbour}
    assert (
        reader.refusal("Military experts", "خبراء عسكريين", **ask, threshold=reader.RETRY_THRESHOLD) is None
    )
    span = "اتفقتا على خطوات ملموسة لإنقاذ التهدئة في سوريا"
    ask = {"question": "What did the two sides agree on?", "lang": "en", "services": harbour}
    assert reader.refusal("They agreed on concrete steps to save the truce in Syria", span, **ask) is None


# The real local model ------------------------------------------------------------------------------


@pytest.fixture
def local(seeded):
    seeded.settings = seeded.settings.model_copy(update={"short_answer": "on", "llm_timeout_s": 600})
    return seeded


@pytest.mark.slow
@pytest.mark.parametrize(
    ("question", "expected_span", "expected_text"),
    [
        ("Where would the joint operations room be?", "الأردن", "Jordan"),
        ("أين ستكون غرفة العمليات المشتركة؟", "الأردن", "الأردن"),
        # With the second reading on (off by default since 2026-12-06), the model read the sentences
        # reversed copied Lavrov's title («وزير الخارجية الروسية») and this answer was not verified.
        ("مع من تفاوض لافروف في موسكو؟", "كيري", "كيري"),
    ],
)
def test_local_model_finds_the_short_answer(local, question, expected_span, expected_text):
    result = local.ask(question)
    short = result.short_answer
    assert short is not None, result.note
    assert expected_span in short.quote and expected_text in short.text and short.verified
    assert result.signals["answer_probability"] > 0.5  # the model's own preference, from its tokens
    assert TEXT[short.start : short.end] == short.quote
    cited = result.citations[short.n - 1]
    assert cited.start <= short.start < short.end <= cited.end


@pytest.mark.slow
@pytest.mark.xfail(
    strict=True,
    reason="known defect: both readings (the evidence in either order) take the Russian media's denial "
    "(«بتعاون عسكري بين البلدين في سوريا») and its rendering drops 'military': the two readings share this failure",
)
def test_local_model_on_the_kremlins_denial_is_checked_or_translated(local):
    # The mission's question: the reader used to take the Russian media's sentence and show
    # "In cooperation between the two countries in Syria" as checked. Now the English reader gets
    # either a checked English short answer about the denied direct military cooperation, or, with
    # the short answer unchecked, the cited sentence's checked translation.
    local.settings = local.settings.model_copy(update={"auto_translate": True})
    result = local.ask("What did the Kremlin deny?")
    short = result.short_answer
    if short is not None and short.verified:
        assert "military cooperation" in short.text.lower()
        return
    held = [c for c in result.citations if short is None or c.n == short.n]
    translated = [c.translation for c in held if c.translation is not None and c.translation.verified]
    assert translated, result.note
    assert "cooperation" in translated[0].text.lower()


@pytest.mark.slow
def test_local_model_answers_a_follow_up_not_the_previous_question(local):
    previous = "Where would the joint operations room be?"
    history = [(previous, local.ask(previous).answer)]
    short = local.ask("Who would it include?", history=history).short_answer
    assert short is not None and "الأردن" not in short.quote  # the previous question's answer
    assert any(word in short.quote for word in ("خبراء", "المخابرات", "مترجمين"))  # the seed's s06 gold


@pytest.mark.slow
def test_local_model_is_deterministic_streamed_or_not(local):
    question = "Where would the joint operations room be?"
    first = local.ask(question).short_answer
    local.ask("Who is Kyle Orton?")  # another prompt in between must not change the reply
    stream = local.stream(question)
    list(stream)
    assert stream.answer().short_answer == first


@pytest.mark.slow
def test_warm_up_evaluates_the_reader_prompt_once_for_the_first_question(local):
    """The warm-up saves the state of the reader prompt's fixed part in the batched decoder (the
    default, QA_LLM_PARALLEL > 1), and the first question restores it instead of reading it again."""
    from qa import llm

    assert local.settings.llm_parallel > 1
    batcher = llm.local_batcher(local.settings)
    fixed = llm.chatml(llm.messages("reader", sentences="x", question="y")[:-1], generation_prompt=False)
    batcher._states.clear()
    reader.warm(local)
    [prefix] = batcher._states  # the reader's instructions and examples, evaluated
    assert list(prefix) == batcher.llama.tokenize(fixed.encode(), add_bos=True, special=True)
    saved = batcher._states[prefix]
    assert local.ask("Where would the joint operations room be?").short_answer.verified
    assert batcher._states[prefix] is saved  # the question reused it: nothing recomputed
    off = local.settings.model_copy(update={"short_answer": "off"})
    batcher._states.clear()
    reader.warm(type("Services", (), {"settings": off})())  # off: nothing is loaded or run
    assert not batcher._states


# The same reader through an OpenAI-compatible server ----------------------------------------------

SEED_QUESTIONS = Path(__file__).resolve().parent.parent / "eval" / "questions" / "seed.jsonl"
# An English question the local model answers and checks, an Arabic one (whose second reading, when
# on, disagrees), an unanswerable one: three kinds of reading, kept few (a shared machine).
SERVED_QUESTIONS = ("s05-en", "s01-ar", "u05-ar")
# How far the served model's signals may lie from the in-process model's. llama.cpp's numbers depend
# on how a prompt is split into batches: in-process, the same prompt gives the s05-en rendering
# token "Jordan" -0.821 (instructions restored from their saved state, as the reader runs) or
# -0.901 (evaluated whole), and the server, which splits by what its cache holds from the request
# before, gave -0.939 and a sentence-number digit 0.045 lower (measured 2026-12-06; see the test's
# docstring for the three questions). A mean log-probability may differ by 0.2 nats, the largest
# difference measured with a margin; a probability by 0.05, what 0.2 nats moves it at most (its
# slope p(1 - p) is at most 1/4).
SERVED_LOGPROB_TOLERANCE = 0.2
SERVED_PROBABILITY_TOLERANCE = 0.05


def _replace(short, **fields):
    return None if short is None else replace(short, **fields)


def _seed_question(qid: str) -> str:
    rows = [json.loads(line) for line in SEED_QUESTIONS.read_text(encoding="utf-8").splitlines() if line]
    return next(r["question"] for r in rows if r["id"] == qid)


@pytest.mark.slow
def test_the_openai_backend_reads_as_the_local_model(local, llama_server):
    """The whole reader (its reading, the rendering checked) through `QA_LLM_BACKEND=openai` at a
    real `llama_cpp.server` serving the same GGUF gives the in-process model's answers: the same
    sentence and span, the same verdicts, and the same signals from the server's log-probabilities
    within `SERVED_PROBABILITY_TOLERANCE` / `SERVED_LOGPROB_TOLERANCE`.

    Measured on 2026-12-06 (in-process against served; the same answers and verdicts all three):
    answer_probability differed by at most 0.0018 (s01-ar: 0.9823 / 0.9805), span_logprob by
    0.006 (s05-en: -0.1071 / -0.1011), rendering_logprob by 0.1175 (s05-en's one token "Jordan":
    -0.8212 / -0.9387; s01-ar 0.0046, u05-ar 0.0205). The server's numbers move a little between
    runs with what its cache held before (s05-en's span -0.0985 in an earlier run)."""
    served = local.settings.model_copy(
        update={"llm_backend": "openai", "llm_base_url": llama_server, "llm_model": "qwen"}
    )
    inproc = local.settings
    for qid in SERVED_QUESTIONS:
        question = _seed_question(qid)
        local.settings = inproc
        mine = local.ask(question)
        local.settings = served
        theirs = local.ask(question)
        assert mine.signals["token_probabilities"] is True, qid
        assert theirs.signals["token_probabilities"] is True, (qid, theirs.note)
        # Calibration is per backend and model (qa.confidence): what the label says may differ.
        uncertified = {"checked": False, "confidence": None, "guarantee": None, "why_not": None}
        assert not (theirs.short_answer and theirs.short_answer.checked), qid  # no calibration: never
        assert _replace(theirs.short_answer, **uncertified) == _replace(mine.short_answer, **uncertified), qid
        assert (theirs.abstained, theirs.note) == (mine.abstained, mine.note), qid
        numbers = {
            "answer_probability": SERVED_PROBABILITY_TOLERANCE,
            "span_logprob": SERVED_LOGPROB_TOLERANCE,
            "rendering_logprob": SERVED_LOGPROB_TOLERANCE,
        }
        assert {k: v for k, v in theirs.signals.items() if k not in numbers} == {
            k: v for k, v in mine.signals.items() if k not in numbers
        }, qid
        for key, tolerance in numbers.items():
            a, b = mine.signals[key], theirs.signals[key]
            assert (a is None) == (b is None), (qid, key, a, b)
            if a is not None:
                assert abs(a - b) <= tolerance, (qid, key, a, b)


def test_subject_only_spans_and_yes_no_questions():
    assert answer_checks.names_only_the_subject("كايل أورتون", "من هو كايل أورتون؟")
    assert not answer_checks.names_only_the_subject("الخبير في منطقة الشرق الأوسط", "من هو كايل أورتون؟")
    assert answer_checks.fits_question("قبل كم من الوقت طالب الأميركيون بإبلاغهم؟", "قبل يوم كامل")
    assert answer_checks.asks_yes_no("هل تغير موقف روسيا من مصير الأسد؟") and answer_checks.asks_yes_no(
        "Did Kerry visit Moscow?"
    )
    assert not answer_checks.asks_yes_no("أين ستكون غرفة العمليات؟") and not answer_checks.asks_yes_no(
        "Who is Kyle Orton?"
    )


def test_a_subject_only_span_abstains_but_a_yes_no_question_keeps_its_quote(planted):
    question = "من هو كايل أورتون؟"
    seen = qreading.evidence_for(planted.retriever.retrieve(question))
    assert any("كايل أورتون" in e.text for e in seen)  # the words are there: only the subject check refuses
    ScriptedChat.script.append(_reply(1, "كايل أورتون", "كايل أورتون"))
    assert planted.ask(question).abstained
    ScriptedChat.script.append(_reply(0, "", ""))
    kept = planted.ask("هل تغير موقف روسيا من مصير الرئيس السوري بشار الأسد؟")
    assert not kept.abstained and kept.citations and kept.short_answer is None


@pytest.mark.parametrize(
    ("question", "span", "why"),
    [
        ("من هو كايل أورتون؟", "كايل أورتون", "subject_only"),
        ("كم عمر كايل أورتون؟", "كايل أورتون", "wrong_type"),
        ("أين ستكون غرفة العمليات المشتركة؟", "في باريس عاصمة فرنسا", "not_in_sentence"),
        ("أين ستكون غرفة العمليات المشتركة؟", "", "no_answer_kept"),
    ],
)
def test_above_the_bar_the_quote_stays_with_a_note_saying_why_no_short_answer(planted, question, span, why):
    # A new user read "found no answer words" for a reading refused as naming only the subject.
    planted.settings = planted.settings.model_copy(update={"reader_abstain_below": -10.0})
    ScriptedChat.script.append(_reply(1 if span else 0, span, span))
    kept = planted.ask(question)
    assert not kept.abstained and kept.citations and kept.short_answer is None
    assert kept.note == reader.NOTES[why]
    assert why in reader.NO_READING  # read back as the reader's "no answer" by the calibration


def test_a_span_of_digits_is_its_own_answer_in_any_language(planted):
    question = "أين ستكون غرفة العمليات المشتركة؟"
    # The seed has no digits: the wording step is called directly on a span of digits.
    reading = qreading.Reading(n=1, span="1803", answer="1803")
    text, verified, note = reader._say(reading, "1803", planted.request(question), "ar", planted)
    assert (text, verified, note) == ("1803", True, None)


# "Checked" needs a certified bar (qa.confidence) -------------------------------------------------


def _plant_passing(planted) -> str:
    question = "أين ستكون غرفة العمليات المشتركة؟"
    words = " ".join(qreading.evidence_for(planted.retriever.retrieve(question))[0].text.split()[1:3])
    ScriptedChat.script.append(_reply(1, words, words))
    return question


def _calibration_file(tmp_path: Path, key: str, threshold: float | None, lang: str = "ar") -> Path:
    from qa import confidence

    n = len(confidence.FEATURES)
    bar = {"decision": "short_answer", "lang": lang, "threshold": threshold, "n": 300, "accepted": 120,
           "wrong": 2, "upper": 0.04, "alpha": 0.05, "delta": 0.1, "reason": None if threshold is not None else "x"}  # fmt: skip
    entry = {"features": list(confidence.FEATURES), "mean": [0.0] * n, "scale": [1.0] * n, "coef": [0.0] * n,
             "intercept": 0.0, "bars": [bar], "measured_on": "planted"}  # fmt: skip
    path = tmp_path / "calibrations.json"
    path.write_text(json.dumps({"calibrations": {key: entry}}), encoding="utf-8")
    return path


def test_a_backend_without_calibration_labels_nothing_checked(planted, tmp_path):
    planted.settings = planted.settings.model_copy(update={"calibrations_path": tmp_path / "none.json"})
    short = planted.ask(_plant_passing(planted)).short_answer
    assert short.verified and not short.checked and short.confidence is None
    assert "not been calibrated" in short.why_not
    assert short.to_dict()["checked"] is False


def test_a_certified_bar_labels_a_verified_answer_checked_with_its_promise(planted, tmp_path):
    from qa import confidence

    key = confidence.calibration_key(planted.settings)
    # A zero-weight model scores every answer 0.5: a bar at 0.4 accepts it, one at 0.6 does not.
    planted.settings = planted.settings.model_copy(
        update={"calibrations_path": _calibration_file(tmp_path, key, 0.4)}
    )
    short = planted.ask(_plant_passing(planted)).short_answer
    assert short.checked and short.confidence == pytest.approx(0.5)
    assert (
        short.guarantee.startswith("fewer than 5 in 100 such answers are wrong")
        and "300 questions" in short.guarantee
    )
    planted.settings = planted.settings.model_copy(
        update={"calibrations_path": _calibration_file(tmp_path, key, 0.6)}
    )
    short = planted.ask(_plant_passing(planted)).short_answer
    assert short.verified and not short.checked and "below the certified bar" in short.why_not
    planted.settings = planted.settings.model_copy(
        update={"calibrations_path": _calibration_file(tmp_path, key, None)}
    )
    short = planted.ask(_plant_passing(planted)).short_answer
    assert not short.checked and "no bar could be certified for Arabic questions" in short.why_not


def test_a_refused_wording_leaves_words_a_certified_bar_can_label_checked(harbour, tmp_path):
    """The English wording is refused (a wrong number), so the document's words are shown; they are
    scored like any short answer, and a bar that accepts the score labels them checked: what is
    checked is then the words shown, never the refused wording."""
    from qa import confidence

    key = confidence.calibration_key(harbour.settings)
    harbour.settings = harbour.settings.model_copy(
        update={"calibrations_path": _calibration_file(tmp_path, key, 0.4, lang="en")}
    )
    ScriptedChat.script.extend([_reply(1, "عام 2016", "In 2015"), "In 2015"])  # the retry errs too
    short = harbour.ask("When was the new harbour opened?").short_answer
    assert not short.verified and short.text == short.quote == "عام 2016"
    assert short.checked and short.confidence == pytest.approx(0.5)
    assert short.status().startswith("checked: fewer than 5 in 100")
    assert "2015" not in short.status()
