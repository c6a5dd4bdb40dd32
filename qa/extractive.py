"""The `extractive` mode: the quote, then the reader's checked short answer, then what makes it readable.

The mode every question takes by default, composed of its stages: a question about the whole
document gets its overview (qa.overview); any other gets the quoted answer at once (qa.answer),
then, when the short answer is on and the quote does not abstain, the same answer with its checked
short answer (qa.reader); an English reader left without a checked English short answer then gets
the cited sentence's checked translation (`readable`, qa.translate), and every cited Arabic
sentence word by word (`glossed`, qa.gloss). Each step yields a `Draft`
first, so the page shows the quote while the reader reads.

Leaves out: the steps themselves; this module only orders them. It lives apart from the quote so
that qa.answer knows nothing of the LLM layer.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Generator
from dataclasses import replace

from qa import answer as qanswer
from qa import gloss as qgloss
from qa import overview, plugins
from qa import reader as qreader
from qa import text as qtext
from qa.errors import LLMError
from qa.retrieve import Retrieval
from qa.stream import Draft, Event, Request
from qa.translate import on_document, translate_sentence

log = logging.getLogger(__name__)


def extractive_mode(
    retrieval: Retrieval, request: Request, services
) -> Generator[Event, None, qanswer.Answer]:
    """The `extractive` mode: the quoted answer at once, then (when the short answer is on and the
    quote does not abstain) the same answer with its checked short answer (qa.reader). A question
    about the whole document gets its overview instead (qa.overview). An English reader without a
    checked English short answer then gets the cited sentences' checked translations (`readable`)."""
    if overview.is_about_document(request.question):
        result = overview.overview_answer(retrieval, services.retriever, request.settings)
        return glossed((yield from readable(result, request, services)))
    quoted = qanswer.extractive(retrieval, request.settings)
    if quoted.abstained:
        return quoted
    if not qreader.short_answer_enabled(request.settings):
        return glossed(quoted)
    result = yield from qreader.with_short_answer(quoted, retrieval, request, services)
    return glossed((yield from readable(result, request, services)))


def glossed(answer: qanswer.Answer) -> qanswer.Answer:
    """For an English reader, every cited Arabic sentence with its word-by-word gloss (qa.gloss:
    dictionaries, lemmas, names in Latin letters; no model), so that a quote never reaches an
    English reader as Arabic alone. Arabic readers' answers are returned unchanged; so is an answer
    when the dictionaries are not installed. Made after the quote is shown (~10-70 ms a sentence)."""
    if answer.answer_lang != "en" or not qgloss.available():
        return answer
    t0 = time.perf_counter()
    citations = tuple(
        replace(c, gloss=qgloss.gloss(c.quote, offset=c.start))
        if not c.gloss and qtext.detect_language(c.quote) == "ar"
        else c
        for c in answer.citations
    )
    timings = {**answer.timings_ms, "gloss": (time.perf_counter() - t0) * 1000}
    return replace(answer, citations=citations, timings_ms=timings)


def readable(answer: qanswer.Answer, request: Request, services) -> Generator[Event, None, qanswer.Answer]:
    """The answer with checked English translations where an English reader would otherwise get
    Arabic only (`Settings.auto_translate`): the cited sentence that holds an unchecked short
    answer (or the first cited one, when there is no short answer), or every sentence of an
    overview. The answer is shown first (a `Draft`); translations are kept in the assistant's
    store (qa.translate), so each sentence costs one LLM call once. A translation that fails its
    check, or a backend that fails, leaves the answer as it was: the Arabic stays highlighted."""
    settings = request.settings
    store = getattr(services, "translations", None)
    short = answer.short_answer
    if (
        not settings.auto_translate
        or store is None
        or answer.abstained
        or answer.answer_lang != "en"
        or (short is not None and short.verified)
        or not qreader.short_answer_enabled(settings)
    ):
        return answer
    targets = translation_targets(answer)
    wanted = {c.n for c in answer.citations if c.n in targets and qtext.detect_language(c.quote) != "en"}
    if not wanted:
        return answer
    yield Draft(answer)
    t0 = time.perf_counter()
    citations = []
    for c in answer.citations:
        if c.n in wanted:
            try:
                translation = translate_sentence(c.quote, "en", services=services, store=store)
                c = replace(c, translation=on_document(translation, c.start))
            except LLMError as exc:
                log.info("automatic translation not made: %s", exc)
        citations.append(c)
    timings = {**answer.timings_ms, "translate": (time.perf_counter() - t0) * 1000}
    return replace(answer, citations=tuple(citations), timings_ms=timings)


def translation_targets(answer: qanswer.Answer) -> set[int]:
    """The numbers of the citations an English reader is given translated (`readable`; the page
    shows them in the answer): every sentence of an overview, else the one that holds the short
    answer, or [1] when there is none."""
    if answer.mode == "overview":
        return {c.n for c in answer.citations}
    return {answer.short_answer.n if answer.short_answer else 1}


def register() -> None:
    """Register the `extractive` mode (called once by `qa.plugins.load_plugins`)."""
    plugins.register_mode(
        plugins.Mode("extractive", "Extractive: quotes the documents verbatim", extractive_mode)
    )
