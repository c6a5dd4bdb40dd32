"""The `generative` mode: the local (or configured) language model writes a cited answer, shown only if checked.

The model gets only the few numbered evidence sentences (quoted as data, `qa.llm.quote`, so a
document cannot instruct it), its words stream as a draft, tokens and seconds are capped, and the
result is shown only if `qa.verify` accepts it; the final `Answer` cites only the sentences the
text cites, renumbered [1], [2], …. When the generated text is not shown, the answer is the
extractive one with mode `generative-fallback` and a `note` that says why. Streamed deltas are a
draft: the final `Answer` is what may be displayed as fact. A question about the whole document
gets its overview (qa.overview), as in the extractive mode.

Leaves out: the backends (qa.llm), retrieval (a follow-up is condensed by qa.condense before
retrieving) and UI wording beyond the notes.
"""

from __future__ import annotations

import re
import time
from collections.abc import Generator
from dataclasses import replace

from qa import answer as qanswer
from qa import overview, plugins
from qa import text as qtext
from qa import verify as qverify
from qa.config import Settings
from qa.errors import LLMError
from qa.llm import messages, quote, stream_text
from qa.retrieve import Retrieval
from qa.stream import Event, Request, deltas

# The model sees at most this many evidence sentences: more context makes a 1.5B model wander.
GEN_EVIDENCE = 3

FALLBACK = {
    "unverified": "The generated answer could not be verified against the cited text ({reason}), so the quoted evidence is shown instead.",
    "backend": "{error} The quoted evidence is shown instead.",
    "declined": "The language model found no answer in the evidence, so the closest quoted evidence is shown instead.",
    "cap": "The language model stopped at the limit of {limit} before finishing, so the quoted evidence is shown instead.",
}
CUT_NOTE = "The generated answer was cut at the limit of {limit}; the part shown is complete and verified."


def evidence_for(retrieval: Retrieval, settings: Settings):
    """The few evidence sentences the model may use: chosen like the extractive mode's, at most 3."""
    return qanswer.select_evidence(
        retrieval,
        max_evidence=max(settings.max_evidence, GEN_EVIDENCE),
        margin=settings.evidence_margin,
        settings=settings,
    )


def _fallback(retrieval: Retrieval, settings: Settings, note: str, timings: dict) -> qanswer.Answer:
    result = qanswer.extractive(retrieval, settings, note=note)
    return replace(result, mode="generative-fallback", timings_ms={**result.timings_ms, **timings})


def _declined(text: str) -> bool:
    """True when the model replied with (or mostly with) the abstention sentence."""
    norm = qtext.normalize(qverify.strip_markers(text))
    return any(qtext.normalize(p["abstain"]).rstrip(".") in norm for p in qanswer.PHRASES.values())


def _complete_part(text: str) -> str:
    """A cut generation up to its last sentence that ends with a citation marker."""
    ends = [m.end() for m in re.finditer(r"\]\s*[.!?؟]?", text)]
    return text[: ends[-1]].strip() if ends else ""


def generative_mode(
    retrieval: Retrieval, request: Request, services: plugins.Services
) -> Generator[Event, None, qanswer.Answer]:
    """The `generative` mode: yield the model's text as `Delta`s (a draft), return the verified
    `Answer`, or the extractive answer (mode `generative-fallback`) with a note saying why."""
    settings: Settings = request.settings
    lang = qanswer.answer_language(retrieval, settings.answer_language)
    if overview.is_about_document(request.question):
        return overview.overview_answer(retrieval, services.retriever, settings)
    if qanswer.is_weak(retrieval, settings):
        return qanswer.abstain(
            retrieval, lang=lang, mode="generative", settings=settings
        )  # the LLM is not asked
    evidence = evidence_for(retrieval, settings)
    prompt = messages(
        "answer",
        language=qtext.LANGUAGE_NAMES[lang],
        abstain=qanswer.PHRASES[lang]["abstain"],
        evidence="\n".join(f"[{n}] «{quote(e.text)}»" for n, e in enumerate(evidence, start=1)),
        question=quote(retrieval.question),
    )
    timings: dict[str, float] = {}
    try:
        model = services.chat_model()
        generation = yield from deltas(stream_text(model, prompt, settings))
    except LLMError as exc:
        return _fallback(retrieval, settings, FALLBACK["backend"].format(error=exc), timings)
    timings["llm"] = generation.seconds * 1000
    if generation.first_token_s is not None:
        timings["first_token"] = generation.first_token_s * 1000
    text, note = generation.text.strip(), None
    timeouts = ("llm",) if generation.finish == "time" else ()
    if generation.finish != "stop":
        limit = (
            f"{settings.llm_max_tokens} tokens"
            if generation.finish == "length"
            else f"{settings.llm_timeout_s:g} s"
        )
        text = _complete_part(text)
        if not text:
            fallback = _fallback(retrieval, settings, FALLBACK["cap"].format(limit=limit), timings)
            return replace(fallback, timeouts=timeouts)
        note = CUT_NOTE.format(limit=limit)
    if _declined(text):
        return replace(_fallback(retrieval, settings, FALLBACK["declined"], timings), timeouts=timeouts)
    t0 = time.perf_counter()
    verdict = qverify.verify(
        text, [e.text for e in evidence], question=retrieval.question, embedder=services.embedder
    )
    timings["verify"] = (time.perf_counter() - t0) * 1000
    if not verdict.ok:
        fallback = _fallback(
            retrieval, settings, FALLBACK["unverified"].format(reason=verdict.reason), timings
        )
        return replace(fallback, timeouts=timeouts)
    mapping = {old: new for new, old in enumerate(verdict.cited, start=1)}
    cited = [evidence[old - 1] for old in verdict.cited]
    return qanswer.Answer(
        question=retrieval.question,
        question_lang=retrieval.language,
        answer=qverify.renumber(text, mapping),
        mode="generative",
        abstained=False,
        citations=qanswer.to_citations(cited, retrieval.hits),
        timings_ms={**retrieval.timings_ms, **timings},
        answer_lang=lang,
        note=note,
        timeouts=timeouts,
    )


def register() -> None:
    """Register the `generative` mode (called once by `qa.plugins.load_plugins`)."""
    plugins.register_mode(
        plugins.Mode(
            "generative",
            "Generative: a local language model writes a cited answer",
            generative_mode,
            uses_llm=True,
        )
    )
