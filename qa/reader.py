"""Reader: the short answer. The exact answer words inside a cited sentence, said in the question's language, checked.

The reader reads once (qa.reading: the model names a sentence, copies the words that answer, and
says them in the question's language), and nothing it says is shown unchecked:
1. the copied words must occur in that sentence, matched on normalised text and mapped back to
   exact document offsets (qa.spans), so `quote == text[start:end]`;
2. the words must fit the question's type and must not merely name its subject
   (qa.answer_checks: "how many", "when", «كم», «متى» need a number or a time word);
3. an English rendering must not merely repeat the question, must be English, and must agree with
   the span: `qa.verify.check_rendering` (same numbers, cross-lingual similarity above a threshold
   calibrated on the dev benchmark's parallel answers, see eval/calibration/, and no day or month
   that no word of the span glosses to, FreeDict's Arabic-English), and every name in it must be
   supported by the span's own words (`qa.translate.unsupported_names`), never by the question's
   alone; and it must pass the word-level check (qa.wordcheck, `answer_word_check`): every English
   content word supported by a word of the span (dictionary, lemma, name, number) and every
   content word of the span rendered;
4. two readings must agree (`Settings.reader_second_reading`, qa.reading.second_reading): the
   short answer is checked only when a second reading, with the evidence in reverse order, picks
   overlapping words of the same sentence. Counting the same answer copied from another sentence
   as agreement too was tried and dropped: on the dev sample it kept 1 of the 4 wrong English
   short answers out where the same-sentence rule kept 3 of 5 out, for the same 3 right ones lost
   (eval/calibration/second-reading.json, runs/dev2 of 2026-12-02). Asking the question in the
   other language instead (the "translate-test" reading) was tried and dropped: the local model's
   question renderings were unusable (3 of 5 seed questions refused by the rendering check, and
   «ما هي مكان جointات العملية؟» passed it).
For an Arabic question the short answer is the Arabic span itself. A refused rendering gets one
second try (the span alone, `qa.translate.render`) held to a stricter bar; a rendering that fails is
never shown: the span is shown (highlighted in the Arabic sentence) with a one-line note.

The reader's "no answer" is a second abstention signal beside the retrieval score: it abstains
when the best evidence also scores below `Settings.reader_abstain_below` (calibrated on answerable
and held-out questions, see eval/calibration/abstention.json); above it the quote stays, with a
note. A reading the model barely preferred to "no answer" (`ReaderSignals.answer_probability`
under `Settings.reader_min_answer_probability`, off by default) counts as "no answer" there too.
Below that bar an Arabic question also abstains when the passage ranked first lacks most of its
distinctive words (`Retrieval.coverage` under `Settings.reader_min_coverage`), whatever the reader
copied from it: asked without its article, a question still finds a passage close in meaning.
A follow-up is read in the user's own words, even when retrieval joined it to the previous question.

Leaves out: retrieval, the quoted answer (qa.answer), the order of the extractive mode's steps
(qa.extractive), and translation of whole sentences (qa.translate, which uses the same rendering
check).
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Generator
from dataclasses import replace

from qa import answer as qanswer
from qa import confidence as qconfidence
from qa import glossary as qglossary
from qa import llm, models
from qa import text as qtext
from qa import translate as qtranslate
from qa import verify as qverify
from qa import wordcheck as qwordcheck
from qa.answer_checks import asks_yes_no, fits_question, names_only_the_subject, repeats_question
from qa.errors import LLMError, LLMTimeout, QAError
from qa.reading import Located, Reading, evidence_for, locate, located_text, read, second_reading
from qa.retrieve import Evidence, Retrieval
from qa.stream import Draft, Event, Request
from qa.types import ShortAnswer

log = logging.getLogger(__name__)

# A second rendering (the span alone, `qa.translate.render`) is asked for only when the reader's own one
# was refused, and is held to the stricter bar of names (qa.verify.NAME_RENDERING_THRESHOLD, 0.67):
# at 0.46 the retry let through near misses the calibration's negatives do not contain ("Expert
# engineers" for «خبراء عسكريين» 0.63, "Area of Hulub" for «منطقة حلب» 0.62); at 0.67 the
# calibration still accepts 69% of true span renderings and 0.5% of same-article wrong ones
# (eval/calibration/rendering.json).
RETRY_THRESHOLD = qverify.NAME_RENDERING_THRESHOLD
RETRY_MAX_TOKENS = 48  # a span of a few words; a cut rendering is refused
# Longer spans get no second try: their rendering is cut at RETRY_MAX_TOKENS and refused anyway, after
# 3-5 s (two seed questions with 30-40-word spans took 12-13 s in all). The dev sample's two
# retries that passed were of 1 and 4 words.
RETRY_MAX_WORDS = 12
NOTES = {
    "unchecked": "No {lang} wording is shown: {reason}; the short answer is the document's own words.",
    "no_answer": "The closest sentences found do not answer this question; the closest passage is shown.",
    "no_answer_kept": "No short answer: the language model found no answer words in the cited sentences.",
    "not_in_sentence": "No short answer: the words the language model gave are not in the cited sentences.",
    "wrong_type": "No short answer: the words the language model picked are not a number, time or duration, "
    "which the question asks for.",
    "subject_only": "No short answer: the words the language model picked only name what the question asks about.",
    "backend": "No short answer: {error}",
    "unusable": "No short answer: the language model's reply could not be used ({reason}).",
    "timeout": "No short answer: the language model did not finish within the time cap of {limit:g} s "
    "(QA_LLM_TIMEOUT_S; a busy machine is the usual cause).",
    "disagree": "Not checked: read again with the sentences in another order, the language model picked "
    "other words; the short answer is the document's own words.",
    "no_second": "Not checked: the second reading could not be made ({reason}); the short answer is the "
    "document's own words.",
}
# The notes of a quote kept without a short answer because the reader found none it could use (the
# reader's "no answer", for abstention: bench/calibrate_abstention.py reads them back).
NO_READING = ("no_answer_kept", "not_in_sentence", "wrong_type", "subject_only")


def warm(services) -> None:
    """Load the local LLM and evaluate the reader prompt's fixed part once (its instructions and
    worked examples: ~550 tokens, ~7 s on 2 cores), so that the first question does not wait for
    it: measured on a fresh `make run`, the first question's reader took 10 s to its first token,
    later ones 1.3-1.5 s. First, whatever the settings, the word check's and the gloss's
    dictionaries, analyser and romanizer are loaded (qa.wordcheck.warm, ~4 s: an English reader's
    cited sentence is glossed even without the short answer). Nothing more unless the short answer
    is on; with another backend only the dictionary of the rendering check (qa.glossary) is read.
    Raises what loading the model raises (`LLMError`)."""
    settings = services.settings
    qwordcheck.warm()  # both dictionaries, the analyser and the romanizer (~4 s), once
    if not short_answer_enabled(settings):
        return
    qglossary.glosses()  # the dictionary the rendering check reads (~0.5 s to parse), once
    if settings.llm_backend != "local":
        return
    prompt = llm.messages("reader", sentences="[1] .", question="?")
    llm.generate(services.chat_model(max_tokens=1), prompt, settings, max_tokens=1)


def short_answer_enabled(settings) -> bool:
    """`QA_SHORT_ANSWER`: on, off, or auto (on when the configured LLM backend is usable offline:
    the local model fetched, or any other backend configured)."""
    if settings.short_answer != "auto":
        return settings.short_answer == "on"
    if settings.llm_backend != "local":
        return True
    return models.is_fetched(models.QWEN_1_5B, settings.models_dir)


def with_short_answer(
    quoted: qanswer.Answer, retrieval: Retrieval, request: Request, services
) -> Generator[Event, None, qanswer.Answer]:
    """Show the quoted answer at once (a `Draft`), then return it with its checked short answer.

    When the reader finds no answer, the final answer abstains (with the closest passage) if
    the best evidence scores below `Settings.reader_abstain_below`, else the quote stays with a
    note; a backend failure keeps the quoted answer with a note. With
    `Settings.reader_second_reading`, the question is read again with the evidence in reverse
    order: the short answer is checked only when both readings pick overlapping words of the same
    sentence (`second_reading`).
    """
    yield Draft(quoted)
    settings = request.settings
    evidence = evidence_for(retrieval)
    lang = quoted.answer_lang
    timeouts: list[str] = []
    if lang == "en" and qwordcheck.available():
        # The short answer's English wording and the cited sentences' translations are checked word
        # by word against the Arabic ones among these: their words are analysed while the model reads.
        texts = dict.fromkeys([e.text for e in evidence] + [c.quote for c in quoted.citations])
        arabic = [t for t in texts if qtext.detect_language(t) == "ar"]
        if arabic:
            qwordcheck.prepare_in_background(arabic)
    try:
        # The user's own words: a follow-up's retrieval may have joined the previous question to
        # it, and given the joined text the model answered the previous question (9 of 11 seed
        # follow-ups did: "Who would it include?" got "in Jordan"); retrieval already resolved "it".
        reading, read_timings, signals = read(request.question, evidence, request, services)
    except LLMTimeout:
        note = NOTES["timeout"].format(limit=settings.llm_timeout_s)
        return replace(quoted, note=note, timeouts=(*quoted.timeouts, "reader"))
    except LLMError as exc:
        return replace(quoted, note=NOTES["backend"].format(error=exc))
    except ValueError as exc:
        return replace(quoted, note=NOTES["unusable"].format(reason=exc))
    timings = {**quoted.timings_ms, **read_timings}
    located = locate(reading, evidence) if reading.n > 0 and reading.span.strip() else None
    words = "" if located is None else located_text(evidence[located.index], located)
    unfound = _unfound(reading, located, words, request.question)
    if unfound not in (None, "no_answer_kept"):
        log.info("reading not used (%s): %r", unfound, reading.span)
    # The model barely preferred its answer to "no answer": below the evidence bar that is doubt
    # enough to abstain; above it the answer is shown (bench/calibrate_abstention.py replays this).
    doubtful = (
        signals.answer_probability is not None
        and signals.answer_probability < settings.reader_min_answer_probability
    )
    # The passage lacks most of the question's distinctive words (names, rare nouns): whatever the
    # reader copied from it answers some other question (held-out questions asked without their
    # article, bench/calibrate_abstention.py).
    uncovered = retrieval.coverage is not None and retrieval.coverage < settings.reader_min_coverage
    best = retrieval.evidence[0].score if retrieval.evidence else float("-inf")
    # Retrieval's view beside the model's, for the calibrator (eval.signals): the evidence scores the
    # reader saw, and which sentence its words came from (0 = the best scored; None = none located).
    signals_dict = {
        **signals.to_dict(),
        "coverage": retrieval.coverage,
        "evidence_scores": [round(e.score, 4) for e in evidence],
        "chosen": None if located is None else located.index,
        "fuzzy": None if located is None else located.fuzzy,
    }
    # A yes/no question has no span to copy: the reader's silence there is not an abstention.
    if (
        (unfound or doubtful or uncovered)
        and best < settings.reader_abstain_below
        and not asks_yes_no(request.question)
    ):
        return replace(
            qanswer.abstain(retrieval, lang=lang, mode=quoted.mode, note=NOTES["no_answer"]),
            timings_ms=timings,
            signals=signals_dict,
        )
    if unfound:
        return replace(quoted, timings_ms=timings, note=NOTES[unfound], signals=signals_dict)
    second = None
    if settings.reader_second_reading:
        second = second_reading(
            request.question,
            located,
            evidence,
            retrieval,
            request,
            services,
            timings=timings,
            timeouts=timeouts,
        )
        agreement = None if second.agreed is None else float(second.agreed)
        signals_dict |= {"agreement": agreement, "second_span": second.span}
    chosen = evidence[located.index]
    result = _cite_first(quoted, chosen, retrieval, settings)
    n = next(c.n for c in result.citations if _same_sentence(c, chosen))
    t0 = time.perf_counter()
    text, verified, note = _say(reading, words, request, lang, services, timings, timeouts)
    timings["reader_check"] = (time.perf_counter() - t0) * 1000
    signals_dict["rules_passed"] = verified  # the first reading's verdict, before any second one
    if second is not None:
        signals_dict["checked_alone"] = verified  # the verdict without the second reading (calibration)
        if verified and not second.agreed:
            if text != words:
                signals_dict["rendering"] = text  # kept for evaluation: the words shown are the span's
            text, verified = words, False
            note = (
                NOTES["disagree"] if second.agreed is False else NOTES["no_second"].format(reason=second.why)
            )
    # The checked wording's support, word by word with document offsets (the refused wording is
    # never shown, so neither is its check).
    check = answer_word_check(text, words, lang, offset=located.start) if verified and text != words else None
    # Checked only with a certified promise: the calibrated score of every signal against the bar
    # certified for this backend, model, prompt and language (qa.confidence; eval.certify). Every
    # short answer is scored, its rules' verdict among the signals: one whose English wording was
    # refused is shown as its Arabic words (glossed for an English reader), which can be right.
    verdict = qconfidence.judge(
        settings,
        "short_answer",
        lang,
        qconfidence.features(request.question, lang, signals_dict, words, chosen.text),
    )
    short = ShortAnswer(
        text=text,
        lang=lang if verified else qtext.detect_language(words),
        verified=verified,
        n=n,
        doc=chosen.doc_id,
        start=located.start,
        end=located.end,
        quote=words,
        checked=bool(verdict and verdict.checked),
        confidence=verdict.score if verdict else None,
        guarantee=verdict.guarantee if verdict else None,
        why_not=verdict.why_not if verdict else None,
        check=check,
    )
    return replace(
        result,
        short_answer=short,
        note=note or result.note,
        timings_ms=timings,
        signals=signals_dict,
        timeouts=(*result.timeouts, *timeouts),
    )


def _unfound(reading: Reading, located: Located | None, words: str, question: str) -> str | None:
    """Why a reading gives no short answer (a key of `NOTES`, one of `NO_READING`), or None when it
    gives one: the model named no sentence, its words are not in it, they are not the kind of words
    the question asks for (`fits_question`), or they only name the question's subject."""
    if reading.n <= 0 or not reading.span.strip():
        return "no_answer_kept"
    if located is None:
        return "not_in_sentence"
    if not fits_question(question, words):
        return "wrong_type"
    if names_only_the_subject(words, question):
        return "subject_only"
    return None


def _same_sentence(citation: qanswer.Citation, evidence: Evidence) -> bool:
    return (citation.doc, citation.start, citation.end) == (evidence.doc_id, evidence.start, evidence.end)


def _cite_first(quoted: qanswer.Answer, chosen: Evidence, retrieval: Retrieval, settings) -> qanswer.Answer:
    """The quoted answer, re-made with `chosen` cited when it was not (the reader judged it answers)."""
    if any(_same_sentence(c, chosen) for c in quoted.citations):
        return quoted
    picked = qanswer.select_evidence(
        retrieval, max_evidence=settings.max_evidence, margin=settings.evidence_margin, settings=settings
    )
    ordered = [
        chosen,
        *[e for e in picked if (e.doc_id, e.start, e.end) != (chosen.doc_id, chosen.start, chosen.end)],
    ]
    ordered = ordered[: settings.max_evidence]
    remade = qanswer.quote(retrieval, ordered, lang=quoted.answer_lang)
    return replace(remade, mode=quoted.mode, timings_ms=quoted.timings_ms, note=quoted.note)


def refusal(
    rendering: str, words: str, *, question: str, lang: str, services, threshold: float | None = None
):
    """Why `rendering` may not be shown as `words` said in `lang`: (reason for the user, detail for
    the log), or None when it passes: in `lang`, not a restatement of the question, the same
    numbers, close in meaning (`qverify.check_rendering` at `threshold`, default the calibrated
    `RENDERING_THRESHOLD`), and no name the words do not support.

    The reason names the kind of failure, never the refused wording: the user never sees it ("the
    name «Russia» is not in the cited words" puzzled a new user).
    """
    name = qtext.LANGUAGE_NAMES.get(lang, lang)
    if not rendering:
        return "the language model gave none", None
    if qtext.detect_language(rendering) != lang:
        return f"the language model's wording was not in {name}", None
    if repeats_question(rendering, question):
        return "the language model's wording only repeated the question", None
    try:
        check = qverify.check_rendering(rendering, words, embedder=services.embedder, threshold=threshold)
    except QAError as exc:
        return str(exc).rstrip("."), None
    if not check.ok:
        if check.missing_numbers:
            return "the language model's wording changed a number", check.reason
        if check.contradicted:
            return "the language model's wording named a day or month the cited words do not", check.reason
        return "the language model's wording did not match the cited words closely enough", check.reason
    # The span's own words only: a name that only the question holds never supports a rendering (a
    # reading of another speaker's words was shown under the asked person's name, because the
    # name was in the question).
    invented = qtranslate.unsupported_names(rendering, words, embedder=services.embedder)
    if invented:
        detail = f"the name «{invented[0]}» is not in the cited words"
        return "the language model's wording added a name that the cited words do not contain", detail
    words_check = answer_word_check(rendering, words, lang)
    if words_check is not None and not words_check.ok:
        return "some words of the language model's wording are not in the cited words", words_check.reason
    if words_check is None and lang == "en" and qtext.detect_language(words) == "ar":
        return "the dictionaries that check English word by word are not installed", None
    return None


def answer_word_check(rendering: str, words: str, lang: str, *, offset: int = 0):
    """The short answer's English wording checked word by word against its Arabic span
    (qa.wordcheck): every content word supported and every content word of the span rendered.
    None for other pairs of languages, or when the dictionaries are not installed."""
    if lang != "en" or qtext.detect_language(words) != "ar" or not qwordcheck.available():
        return None
    return qwordcheck.check(rendering, words, offset=offset, min_share=qwordcheck.ANSWER_SHARE, complete=True)


def _say(
    reading: Reading,
    words: str,
    request: Request,
    lang: str,
    services,
    timings: dict | None = None,
    timeouts: list[str] | None = None,
) -> tuple[str, bool, str | None]:
    """The short answer's text in `lang`: the span itself when it is already in `lang`, else the
    checked rendering; else (with `Settings.reader_retry`, off by default) a second rendering of the
    span alone, held to the stricter `RETRY_THRESHOLD`; or the span, unverified, with a note saying
    why the rendering was refused.
    A second rendering cut at the time cap appends "reader_retry" to `timeouts`."""
    if qtext.detect_language(words) == lang or not re.search(r"[^\W\d_]", words):
        return words, True, None  # already in `lang`, or digits and signs only: the same in any language
    rendering = reading.answer.strip().strip("\"'«»“”").strip()
    refused = refusal(rendering, words, question=request.question, lang=lang, services=services)
    if refused is None:
        return rendering, True, None
    log.info("short answer rendering refused: %r for %r: %s", rendering, words, refused[1] or refused[0])
    unchecked = NOTES["unchecked"].format(lang=qtext.LANGUAGE_NAMES.get(lang, lang), reason=refused[0])
    if not request.settings.reader_retry or len(words.split()) > RETRY_MAX_WORDS:
        return words, False, unchecked
    t0 = time.perf_counter()
    try:  # the span alone, with the cited-sentence translation prompt (~1 s)
        second = qtranslate.render(
            words, lang, services=services, settings=request.settings, max_tokens=RETRY_MAX_TOKENS
        )
    except LLMTimeout:
        second = None
        if timeouts is not None:
            timeouts.append("reader_retry")
    except LLMError:
        second = None
    if timings is not None:
        timings["reader_retry"] = (time.perf_counter() - t0) * 1000
    again = refusal(
        second or "",
        words,
        question=request.question,
        lang=lang,
        services=services,
        threshold=RETRY_THRESHOLD,
    )
    if again is None:
        return second, True, None
    log.info("short answer second rendering refused: %r for %r: %s", second, words, again[1] or again[0])
    return words, False, unchecked
