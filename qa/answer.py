"""Answer: turn retrieved evidence into a cited answer, or abstain when the evidence is too weak.

The `extractive` mode quotes the best evidence sentences verbatim with `[n]` markers, framed in the
answer language ("According to the article [1]: «…»"); the list items or table rows a cited
sentence announces (`Citation.items`, found by qa.retrieve) follow it, a line each. Every citation carries exact offsets into
its document, so `quote == document_text[start:end]`. Below the abstention threshold (a setting,
calibrated on questions the document cannot answer) the answer says the document does not answer
and cites nothing; the closest sentences are still returned, apart, for a UI to show.
Leaves out: generated wording (llm.py builds on the same `Answer`) and retrieval.
"""

from __future__ import annotations

import unicodedata

from qa import confidence as qconfidence
from qa import text as qtext
from qa.errors import InputError
from qa.retrieve import Evidence, Retrieval, back_reference
from qa.types import Answer as Answer  # re-exported: the stages name them as qa.answer's
from qa.types import Citation as Citation

PHRASES = {
    "en": {
        "lead": "According to the article {n}: «{quote}»",
        "more": " It also says {n}: «{quote}»",
        "abstain": "The article does not answer this question.",
        "empty": "Nothing is indexed yet: add a document first.",
    },
    "ar": {
        "lead": "بحسب المقال {n}: «{quote}»",
        "more": " ويذكر أيضاً {n}: «{quote}»",
        "abstain": "لا يجيب المقال عن هذا السؤال.",
        "empty": "لم تُفهرس أي وثيقة بعد: أضف وثيقة أولاً.",
    },
}


# Invisible format characters (Unicode category Cf: RLM/LRM U+200E/F, zero-width space U+200B and
# joiners, BOM, bidi embeddings and isolates) strip like whitespace.
_INVISIBLE = "".join(chr(c) for c in (*range(0x200B, 0x2010), *range(0x202A, 0x202F), *range(0x2060, 0x2070)))
_INVISIBLE += "\u00ad\u061c\u180e\ufeff"
_STRIPPED = "".join(c for c in map(chr, range(0x3001)) if c.isspace()) + _INVISIBLE


def check_question(question: str, *, max_chars: int) -> str:
    """The question stripped of whitespace and invisible characters, or an `InputError`.

    A question of nothing but invisible characters (U+200F, zero-width spaces) is empty, like a
    blank one. Raises `InputError` when it is empty or longer than `max_chars` characters.

    Example: check_question("  Who?\u200f ", max_chars=10) == "Who?"
    """
    question = (question or "").strip(_STRIPPED)
    if not question or all(unicodedata.category(c) in ("Cc", "Cf", "Zs") for c in question):
        raise InputError("The question is empty; type a question about the documents.")
    if len(question) > max_chars:
        raise InputError(f"The question is {len(question)} characters long; the limit is {max_chars}.")
    return question


def answer_language(retrieval: Retrieval, setting: str) -> str:
    """The language to answer in: the setting, or the question's language when it is "auto"."""
    return retrieval.language if setting == "auto" else setting


def select_evidence(
    retrieval: Retrieval, *, max_evidence: int, margin: float, settings=None
) -> list[Evidence]:
    """The evidence sentences an answer cites, best first: the best by citation rank
    (`Evidence.cite_score`) and runners-up within `margin` of it, at most `max_evidence`.

    With `settings` (a `Settings`), the runners-up are picked by maximal marginal relevance
    (Carbonell & Goldstein 1998): each next pick maximises its rank less `cite_redundancy_weight`
    times its word overlap with the sentences already picked (`redundancy`), and a near-copy of a
    picked sentence (overlap at least `cite_near_copy`) is never cited beside it. With
    `cite_follow` on, the sentence right after the best one is cited too when it opens by pointing
    back at it (qa.retrieve.back_reference: «وأشار إلى أنّ…»), before the other runners-up.
    `margin` is `Settings.evidence_margin` (0.06, chosen by hand on the seed set); when the rank is
    the learned one, the retrieval's own `cite_margin` (log-odds) replaces it.
    """
    if not retrieval.evidence:
        return []
    if retrieval.cite_margin is not None:
        margin = retrieval.cite_margin
    ranked = sorted(retrieval.evidence, key=lambda e: e.cite_score, reverse=True)
    best = ranked[0].cite_score
    listed = {(ranked[0].doc_id, i.start, i.end) for i in ranked[0].items}  # shown under the first already
    pool = [e for e in ranked if e.cite_score >= best - margin and (e.doc_id, e.start, e.end) not in listed]
    if settings is None:
        return pool[:max_evidence]
    chosen = [pool[0]]
    if settings.cite_follow and max_evidence > 1:
        after = _next_sentence(retrieval.evidence, pool[0])
        if after is not None and back_reference(after.text):
            chosen.append(after)
    mu = settings.cite_redundancy_weight
    left = [e for e in pool[1:] if e not in chosen]
    while len(chosen) < max_evidence and left:
        left = [e for e in left if max(redundancy(e.text, c.text) for c in chosen) < settings.cite_near_copy]
        if not left:
            break
        pick = max(left, key=lambda e: e.cite_score - mu * max(redundancy(e.text, c.text) for c in chosen))
        chosen.append(pick)
        left.remove(pick)
    return chosen


def redundancy(a: str, b: str) -> float:
    """The Jaccard overlap of two sentences' normalised, stemmed words (stopwords kept), in [0, 1].
    Words, not embeddings: a paraphrase of a different fact is close in meaning but not a copy.

    Example: redundancy("قال الوزير إن الاجتماع مهم", "قال الوزير إن الاجتماع مهم جداً") == 5 / 6
    """
    x, y = set(qtext.tokens(a, keep_stopwords=True)), set(qtext.tokens(b, keep_stopwords=True))
    return len(x & y) / len(x | y) if x or y else 1.0


def _next_sentence(evidence, e: Evidence) -> Evidence | None:
    """The evidence sentence that follows `e` in its paragraph (every sentence of the retrieved
    chunks is evidence, each once), or None when none does."""
    after = [x for x in evidence if (x.doc_id, x.paragraph) == (e.doc_id, e.paragraph) and x.start >= e.end]
    return min(after, key=lambda x: x.start) if after else None


def to_citations(evidence: list[Evidence], hits) -> tuple[Citation, ...]:
    """Number evidence sentences as citations [1], [2], … with their surrounding passage."""
    chunks = {h.chunk.id: h.chunk for h in hits}
    out = []
    for n, e in enumerate(evidence, start=1):
        chunk = chunks[e.chunk_id]
        out.append(
            Citation(
                n=n,
                doc=e.doc_id,
                chunk_id=e.chunk_id,
                start=e.start,
                end=e.end,
                quote=e.text,
                paragraph=e.paragraph,
                score=round(e.score, 4),
                passage=chunk.text,
                passage_start=chunk.start,
                page=e.page,
                items=e.items,
            )
        )
    return tuple(out)


def threshold_for(language: str, settings) -> float:
    """The abstention threshold for a question language (Arabic questions score higher on Arabic text).

    Example: threshold_for("ar", Settings()) == Settings().abstain_threshold_ar
    """
    return settings.abstain_threshold_ar if language == "ar" else settings.abstain_threshold


def is_weak(retrieval: Retrieval, settings) -> bool:
    """True when the abstention score (qa.confidence.abstention_score: the best evidence score, adjusted
    by the retrieval's other signals where a certified adjustment exists) is below the threshold of
    the question's language, or nothing was retrieved."""
    score = qconfidence.abstention_score(retrieval, settings)
    return score is None or score < threshold_for(retrieval.language, settings)


# Why a weak retrieval abstained, for the note (a new user saw abstentions with no reason given).
WEAK_NOTE = "No passage is close enough in meaning to this question; the closest passage is shown."


def weak_note(language: str, settings) -> str:
    """`WEAK_NOTE`, and what the bar promises when the bar in use is at or below the certified one
    for the question's language (qa.confidence.abstention_bar: a lower bar refuses no more answerable
    questions, so the promise holds); a bar set above it promises nothing.

    Example: weak_note("en", settings) == WEAK_NOTE + " This bar wrongly refuses fewer than 5 in 100
    answerable questions like those it was measured on (certified with 90% confidence on 667
    questions of a calibration set)."
    """
    bar = qconfidence.abstention_bar(language, settings)
    if bar is None or threshold_for(language, settings) > bar.threshold + 1e-9:
        return WEAK_NOTE
    if bar.adjustment is not None and not getattr(settings, "abstain_adjusted", True):
        return WEAK_NOTE  # the bar was certified on the adjusted score, not on the best score alone
    return f"{WEAK_NOTE} This bar {bar.guarantee()}."


def abstain(retrieval: Retrieval, *, lang: str, mode: str, note: str | None = None, settings=None) -> Answer:
    """An answer that says the documents do not answer, citing nothing, with the closest evidence;
    `note` defaults to `weak_note` (`WEAK_NOTE` without `settings`) when anything is indexed."""
    phrases = PHRASES[lang]
    text = phrases["abstain"] if retrieval.hits else phrases["empty"]
    if note is None and retrieval.hits:
        note = WEAK_NOTE if settings is None else weak_note(retrieval.language, settings)
    closest = to_citations(list(retrieval.evidence[:2]), retrieval.hits)
    return Answer(
        question=retrieval.question,
        question_lang=retrieval.language,
        answer=text,
        mode=mode,
        abstained=True,
        citations=(),
        timings_ms=dict(retrieval.timings_ms),
        closest=closest,
        answer_lang=lang,
        note=note,
    )


def quote(retrieval: Retrieval, evidence: list[Evidence], *, lang: str, note: str | None = None) -> Answer:
    """An answer quoting `evidence` verbatim in order, as [1], [2], …, framed in `lang`."""
    citations = to_citations(evidence, retrieval.hits)
    phrases = PHRASES[lang]
    parts = [
        phrases["lead" if c.n == 1 else "more"].format(n=f"[{c.n}]", quote=c.quote) + items_text(c)
        for c in citations
    ]
    return Answer(
        question=retrieval.question,
        question_lang=retrieval.language,
        answer="".join(parts),
        mode="extractive",
        abstained=False,
        citations=citations,
        timings_ms=dict(retrieval.timings_ms),
        answer_lang=lang,
        note=note,
    )


def items_text(citation: Citation) -> str:
    """The list items or table rows a cited sentence announces, each on a line of its own under it
    as «its exact text» ("" when it has none).

    Example: items_text(c) == "\n«• الحديقة»\n«• المكتبة»" for a citation with two items
    """
    return "".join(f"\n«{item.text}»" for item in citation.items)


def extractive(retrieval: Retrieval, settings, *, note: str | None = None) -> Answer:
    """Quote the best evidence sentences verbatim with [n] markers, or abstain."""
    lang = answer_language(retrieval, settings.answer_language)
    if is_weak(retrieval, settings):
        return abstain(retrieval, lang=lang, mode="extractive", note=note, settings=settings)
    evidence = select_evidence(
        retrieval, max_evidence=settings.max_evidence, margin=settings.evidence_margin, settings=settings
    )
    return quote(retrieval, evidence, lang=lang, note=note)
