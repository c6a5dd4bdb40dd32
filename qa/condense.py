"""Follow-ups made standalone, and questions rendered in Arabic, by the LLM (one short call each).

`condense_question` is what an LLM mode's follow-up is retrieved with (qa.assistant); a backend
failure or an implausible rewrite keeps the user's question. `translate_question` renders an
English question in Arabic; only bench/bench_translate.py uses it: the local model's renderings
were too poor to retrieve or read with (3 of 5 seed questions refused by the rendering check,
2026-12-02).

Leaves out: the extractive mode's follow-ups, which retrieval resolves without the LLM
(qa.assistant.Assistant.retrieve).
"""

from __future__ import annotations

from langchain_core.language_models import BaseChatModel

from qa import text as qtext
from qa import verify as qverify
from qa.config import Settings
from qa.errors import LLMError
from qa.llm import complete, messages, quote

HISTORY_TURNS = 3  # the turns a follow-up is condensed against: older ones rarely hold its referent


def condense_question(
    question: str, history: list[tuple[str, str]], *, model: BaseChatModel, settings: Settings
) -> str:
    """A standalone version of a follow-up question, or the question itself when there is no history.

    The LLM sees the last few turns (answers without markers, shortened); a backend failure or an
    implausible rewrite (empty, several lines, far longer than the question) keeps the question as is.
    """
    if not history:
        return question
    turns = []
    for q, a in history[-HISTORY_TURNS:]:
        answer = qverify.strip_markers(a)
        turns.append(f"User: {quote(q)}\nAssistant: {quote(answer[:400])}")
    prompt = messages("condense", history="\n".join(turns), question=quote(question))
    try:
        rewritten = complete(model, prompt, settings, max_tokens=64)
    except LLMError:
        return question
    rewritten = rewritten.strip().strip("\"'«»“”").strip()
    if not rewritten or "\n" in rewritten or len(rewritten) > 3 * len(question) + 80:
        return question
    return rewritten


def translate_question(question: str, *, model: BaseChatModel, settings: Settings) -> str:
    """An English question in Arabic (for lexical retrieval); the question itself if it is not English."""
    if qtext.detect_language(question) != "en":
        return question
    rewritten = complete(model, messages("translate", question=quote(question)), settings, max_tokens=64)
    rewritten = rewritten.strip().strip("\"'«»“”").splitlines()[0].strip() if rewritten.strip() else ""
    return rewritten if qtext.detect_language(rewritten) == "ar" else question
