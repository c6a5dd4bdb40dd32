"""One reading: the reader model's pick of a sentence and of the words in it that answer, located.

`read` asks the configured LLM once, on the question and the top evidence sentences
(`evidence_for`: at most `READER_EVIDENCE`, within `READER_MARGIN` of the best), with structured
output (`prompts/reader.txt`; a JSON schema the local model's grammar enforces, a
`response_format` for OpenAI-compatible servers, pydantic validation for every backend): the
number of the sentence that answers, the words copied from it, and the answer said in the
question's language, or `{"n": 0}` for "no answer". `parse` validates the reply (a reply cut after
its span keeps the span), `locate` finds the copied words in their sentence as exact document
offsets (qa.spans), and `reader_signals` turns the local model's token probabilities into how sure
it was (`ReaderSignals`).

`second_reading` reads the same question again with the evidence in reverse order and says
whether both readings picked overlapping words of the same sentence: a small reader's wrong pick
leans on where a sentence sits (the seed's "What did the Kremlin deny?" took the first sentence's
words); a right one does not.

Leaves out: what is shown from a reading and the checks it must pass first (qa.reader).
"""

from __future__ import annotations

import json
import logging
import math
import re
import time
from dataclasses import asdict, dataclass

from pydantic import BaseModel, Field, ValidationError

from qa import llm, plugins
from qa import spans as qspans
from qa.errors import LLMError, LLMTimeout
from qa.retrieve import Evidence, Retrieval
from qa.stream import Request

log = logging.getLogger(__name__)

# The model sees at most this many evidence sentences: beyond three a 1.5B model wanders, and each
# Arabic sentence costs ~80-150 prompt tokens (~1-2 s on 2 cores).
READER_EVIDENCE = 3
# Sentences scoring this far below the best are left out: a far weaker sentence is rarely the answer
# and distracts a 1.5B model (the seed's «في الأردن» was missed when two weaker sentences came along).
READER_MARGIN = 0.1
READER_MAX_TOKENS = 96  # {"n", "span", "answer"} with a short span and rendering fits in ~40
SCHEMA = {
    "type": "object",
    "properties": {
        "n": {"type": "integer", "minimum": 0},
        "span": {"type": "string"},
        "answer": {"type": "string"},
    },
    "required": ["n", "span", "answer"],
}


class Reading(BaseModel):
    """The model's reply, validated: sentence number (0 = no answer), copied words, rendering."""

    n: int = Field(ge=0)
    span: str = Field(max_length=400)
    answer: str = Field(max_length=400)


@dataclass(frozen=True)
class Located:
    """Where the reader's words are: evidence index (0-based) and [start, end) document offsets."""

    index: int
    start: int
    end: int
    fuzzy: bool


@dataclass(frozen=True)
class ReaderSignals:
    """How sure the local model was of its reading, from its own token probabilities.

    `answer_probability`: 1 - P("0") among the ten digits at the sentence-number step, i.e. how
    much the model preferred naming a sentence to "no answer"; `span_logprob` and
    `rendering_logprob`: mean natural-log probability per token of the span's and the rendering's
    characters (0 is certain). None when the backend gives no token probabilities.
    """

    answer_probability: float | None = None
    span_logprob: float | None = None
    rendering_logprob: float | None = None

    def to_dict(self) -> dict:
        return {k: None if v is None else round(v, 4) for k, v in asdict(self).items()}


def _string_value(reply: bytes, key: str) -> tuple[int, int] | None:
    """Byte offsets [start, end) of the JSON string value of `key` in a reply (escapes skipped)."""
    match = re.search(rb'"' + key.encode() + rb'"\s*:\s*"((?:[^"\\]|\\.)*)"', reply, flags=re.S)
    return match.span(1) if match else None


def reader_signals(tokens) -> ReaderSignals:
    """`ReaderSignals` from a generation's tokens (`qa.llm.TokenLogprob`), or all None without them.

    Example: reader_signals(None) == ReaderSignals()
    """
    if not tokens:
        return ReaderSignals()
    first_digit = next((t for t in tokens if t.digits is not None), None)
    answer_probability = None
    if first_digit is not None:
        top = max(first_digit.digits)
        weights = [math.exp(d - top) for d in first_digit.digits]
        answer_probability = 1.0 - weights[0] / sum(weights)
    reply, spans, at = b"".join(t.piece for t in tokens), [], 0
    for t in tokens:
        spans.append((at, at + len(t.piece), t.logprob))
        at += len(t.piece)

    def mean_inside(key: str) -> float | None:
        where = _string_value(reply, key)
        if where is None or where[0] == where[1]:
            return None
        inside = [lp for a, b, lp in spans if a < where[1] and b > where[0]]
        return sum(inside) / len(inside) if inside else None

    return ReaderSignals(answer_probability, mean_inside("span"), mean_inside("answer"))


def evidence_for(retrieval: Retrieval) -> list[Evidence]:
    """The sentences the reader sees: up to `READER_EVIDENCE` evidence sentences within
    `READER_MARGIN` of the best, strongest first (a clear winner is read alone), then a
    follow-up's alternative reading."""
    if not retrieval.evidence:
        return []
    best = retrieval.evidence[0].score
    near = [e for e in retrieval.evidence[:READER_EVIDENCE] if e.score >= best - READER_MARGIN]
    # A follow-up's other reading (qa.assistant.Assistant.retrieve) always gets a place.
    return (near[: READER_EVIDENCE - len(retrieval.alternatives)] + list(retrieval.alternatives))[
        :READER_EVIDENCE
    ]


def _sentences_block(evidence: list[Evidence]) -> str:
    """Numbered sentences, one per line, as inert data (no line breaks or markup inside)."""
    return "\n".join(f"[{n}] {llm.quote(e.text)}" for n, e in enumerate(evidence, start=1))


# A reply cut by `READER_MAX_TOKENS` after its span (a long span leaves no room for the rendering):
# the sentence number and the span are whole, and the span is checked like any other.
_CUT_AFTER_SPAN = re.compile(r'\{\s*"n"\s*:\s*(\d+)\s*,\s*"span"\s*:\s*("(?:[^"\\]|\\.)*")')


def parse(reply: str) -> Reading:
    """The model's JSON reply as a `Reading`; `ValueError` with a short reason when it is not one.

    A reply cut off after its span keeps the span, with no rendering (`answer == ""`).
    Example: parse('{"n": 1, "span": "في الأردن", "answer": "in Jor').span == "في الأردن"
    """
    match = re.search(r"\{.*\}", reply, flags=re.S)
    if not match:
        cut = _CUT_AFTER_SPAN.match(reply.strip())
        if cut:
            return Reading(n=int(cut.group(1)), span=json.loads(cut.group(2))[:400], answer="")
        raise ValueError("no JSON object")
    try:
        return Reading.model_validate(json.loads(match.group()))
    except (json.JSONDecodeError, ValidationError) as exc:
        raise ValueError(str(exc).splitlines()[0][:120]) from None


def read(
    question: str, evidence: list[Evidence], request: Request, services
) -> tuple[Reading, dict, ReaderSignals]:
    """Ask the configured LLM once: the validated `Reading`, timings (ms: reader,
    reader_first_token) and the model's `ReaderSignals` (token probabilities: local backend only).

    Raises `LLMTimeout` when the reply was cut at the time cap, `LLMError` when the backend fails,
    `ValueError` when its reply is not a valid reading.
    """
    settings = request.settings
    prompt = llm.messages("reader", sentences=_sentences_block(evidence), question=llm.quote(question))
    model = services.chat_model(max_tokens=READER_MAX_TOKENS)
    backend = plugins.get_backend(settings.llm_backend)
    options = backend.json_options(SCHEMA)
    if backend.token_logprobs:
        options = {**options, "logprobs": True}
    generation = llm.generate(model, prompt, settings, max_tokens=READER_MAX_TOKENS, **options)
    if generation.finish == "time":  # a cut reply is not the model's reading: say so, not "no JSON object"
        raise LLMTimeout(llm.timeout_message(settings))
    timings = {"reader": generation.seconds * 1000}
    if generation.first_token_s is not None:
        timings["reader_first_token"] = generation.first_token_s * 1000
    return parse(generation.text), timings, reader_signals(generation.tokens)


def locate(reading: Reading, evidence: list[Evidence]) -> Located | None:
    """The reader's words in its chosen sentence, else (a misnumbered reply) in another one."""
    order = [reading.n - 1] + [i for i in range(len(evidence)) if i != reading.n - 1]
    for fuzzy_ok in (False, True):
        for i in order:
            if not 0 <= i < len(evidence):
                continue
            found = qspans.find_span(evidence[i].text, reading.span)
            if found and (fuzzy_ok or not found[2]):
                start, end, fuzzy = found
                return Located(i, evidence[i].start + start, evidence[i].start + end, fuzzy)
    return None


def located_text(evidence: Evidence, located: Located) -> str:
    """The document's own words at `located` (its offsets are the document's, not the sentence's)."""
    return evidence.text[located.start - evidence.start : located.end - evidence.start]


def second_evidence(evidence: list[Evidence], retrieval: Retrieval) -> list[Evidence]:
    """The evidence of the second reading: the first reading's in reverse order, so that every
    sentence sits elsewhere; a single sentence gets the next-best evidence sentence before it."""
    if len(evidence) == 1:
        spans = {(e.doc_id, e.start, e.end) for e in evidence}
        more = [e for e in retrieval.evidence if (e.doc_id, e.start, e.end) not in spans][:1]
        evidence = [*evidence, *more]
    return list(reversed(evidence))


@dataclass(frozen=True)
class SecondReading:
    """The second reading's verdict: `agreed` True or False, or None when it could not be made
    (`why` says why, for the note); `span` is the words it copied (None when it named none)."""

    agreed: bool | None
    why: str | None = None
    span: str | None = None


def second_reading(
    question: str,
    first: Located,
    evidence: list[Evidence],
    retrieval: Retrieval,
    request: Request,
    services,
    *,
    timings: dict,
    timeouts: list[str],
) -> SecondReading:
    """Whether a second reading of `question`, with the evidence in another order
    (`second_evidence`), picks words overlapping `first` in the same sentence. It cannot be made
    with one sentence only, or when the backend fails, its reply is unusable or it is cut at the
    time cap ("reader_second" is then added to `timeouts`). Adds its time (ms) to
    `timings["reader_second"]`.

    Two readings that do not share their failure: a small reader's wrong pick depends on where a
    sentence sits, a right answer does not (self-consistency, Wang et al. 2023).
    """
    reordered = second_evidence(evidence, retrieval)
    if len(reordered) < 2:
        return SecondReading(None, "there is only one sentence to read")
    t0 = time.perf_counter()
    try:
        reading, _, _ = read(question, reordered, request, services)
    except LLMTimeout:
        timeouts.append("reader_second")
        return SecondReading(None, "the language model did not finish within the time cap")
    except LLMError as exc:
        return SecondReading(None, str(exc).rstrip("."))
    except ValueError:
        return SecondReading(None, "the language model's reply could not be used")
    finally:
        timings["reader_second"] = (time.perf_counter() - t0) * 1000
    if reading.n <= 0 or not reading.span.strip():
        return SecondReading(False)
    other = locate(reading, reordered)
    log.info("second reading: %r", reading.span)
    if other is None:
        return SecondReading(False, span=reading.span)
    chosen, picked = evidence[first.index], reordered[other.index]
    same = (chosen.doc_id, chosen.start) == (picked.doc_id, picked.start)
    agreed = same and max(first.start, other.start) < min(first.end, other.end)
    return SecondReading(agreed, span=located_text(picked, other))
