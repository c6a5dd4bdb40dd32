"""Translate: each cited sentence said in the reader's language, checked before it is shown, kept.

On request (`qa ask --translate`, the Sources panel's control), every cited sentence of an answer
that is not already in the answer's language is translated by the configured LLM
(`prompts/translate_sentence.txt`) and checked like a short answer's rendering
(`qa.verify.check_rendering`: the same numbers, a cross-lingual similarity above the calibrated
threshold, no day or month the sentence does not name) plus `unsupported_names`, and an English
rendering of Arabic is checked word by word (qa.wordcheck: every name, number, negation and
relation word supported, and the calibrated share of its words). A translation that fails a check
is never shown as checked: the citation carries `Translation(text=None, verified=False)`, with the
refused English as `rough` and its word check, for the page to show word-marked as a rough
machine translation that is not checked. Results are kept in SQLite (`Settings.translations_path`),
keyed by the sentence, the language and the backend, so a sentence is translated once.

Example:
    assistant.translate(assistant.ask("Who is Kyle Orton?")).citations[0].translation.text

Leaves out: the answer's own wording (qa.answer, qa.reader) and translating whole documents.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import replace

from qa import llm
from qa import text as qtext
from qa import verify as qverify
from qa import wordcheck as qwordcheck
from qa.errors import LLMTimeout
from qa.records import SQLiteStore
from qa.types import Translation as Translation  # re-exported
from qa.types import WordCheck

# A news sentence is 20-60 words; English needs ~1.3 tokens per word: 160 tokens covers the long ones.
TRANSLATION_MAX_TOKENS = 160


class TranslationStore(SQLiteStore):
    """Translations kept in one SQLite file: (sentence sha256, language, backend) -> translation.

    The table is `translations_words`: verdicts kept before the word-level check (table
    `translations`) are not reused, so nothing checked by similarity alone comes back checked.
    A rendering's word check is made again when read (a few milliseconds: the dictionaries' glosses
    are cached), so a rendering kept as checked that today's word check refuses comes back refused,
    shown as `rough`."""

    SCHEMA = (
        "CREATE TABLE IF NOT EXISTS translations_words (sentence TEXT, lang TEXT, backend TEXT,"
        " text TEXT, verified INTEGER, note TEXT, rough TEXT, PRIMARY KEY (sentence, lang, backend))"
    )
    WHAT = "translation store"

    def get(self, sentence: str, lang: str, backend: str) -> Translation | None:
        key = hashlib.sha256(sentence.encode("utf-8")).hexdigest()
        with self._lock, self._connect() as db:
            row = db.execute(
                "SELECT text, verified, note, rough FROM translations_words"
                " WHERE sentence=? AND lang=? AND backend=?",
                (key, lang, backend),
            ).fetchone()
        if row is None:
            return None
        shown = row[0] if row[0] is not None else row[3]
        check = word_check(shown, sentence, lang) if shown else None
        if row[1] and check is not None and not check.ok:
            # Checked by an older, looser word check: today's verdict wins, never the kept label.
            return Translation(None, lang, False, check.reason, check=check, rough=shown)
        note = qwordcheck.record_note() if row[1] and check is not None else row[2]  # today's record
        return Translation(row[0], lang, bool(row[1]), note, check=check, rough=row[3])

    def put(self, sentence: str, backend: str, translation: Translation) -> None:
        key = hashlib.sha256(sentence.encode("utf-8")).hexdigest()
        with self._lock, self._connect() as db:
            db.execute(
                "INSERT OR REPLACE INTO translations_words VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    key,
                    translation.lang,
                    backend,
                    translation.text,
                    int(translation.verified),
                    translation.note,
                    translation.rough,
                ),
            )


def word_check(rendering: str, sentence: str, lang: str) -> WordCheck | None:
    """The word-level check of an English rendering of an Arabic sentence (qa.wordcheck, offsets
    into `sentence`); None for other pairs of languages (the word check reads Arabic into English)."""
    if lang != "en" or qtext.detect_language(sentence) != "ar" or not qwordcheck.available():
        return None
    return qwordcheck.check(rendering, sentence)


# A reply that names its own language first ("English translation: …"): the label is not part of
# the translation, and "English" is not a name of the sentence's (a new user's translation was
# refused for "the name «English» is not in the sentence").
_LABEL = re.compile(
    r"^\W*(?:in\s+)?(?:English|Arabic|العربية|الإنجليزية)(?:\s+(?:translation|الترجمة))?\s*[:：]\s*", re.I
)


def unsupported_names(rendering: str, source: str, *, embedder, question: str = "") -> list[str]:
    """Names in `rendering` (capitalised Latin words) that `source` does not support word for word,
    transliterated, or as a checked rendering (`qa.verify.name_support`); names the user typed in
    `question` pass. Similarity alone lets a swapped or invented name through ("the Kurds" for
    «الكرملين» passed at 0.46), so every rendering shown passes this too."""
    return [
        name
        for name in qverify.names(rendering)
        if qverify.name_support(name, [source], question=question, embedder=embedder) is None
    ]


def render(
    text: str, lang: str, *, services, settings, max_tokens: int = TRANSLATION_MAX_TOKENS
) -> str | None:
    """`text` said in `lang` by the configured LLM (`prompts/translate_sentence.txt`), unchecked and
    stripped of quotes; None when the reply was cut at `max_tokens`. Raises `LLMTimeout` when it was
    cut at the time cap (so a busy machine's failure is not kept as the sentence's translation) and
    `LLMError` when the backend fails."""
    prompt = llm.messages("translate_sentence", language=qtext.LANGUAGE_NAMES[lang], sentence=llm.quote(text))
    model = services.chat_model(max_tokens=max_tokens)
    generation = llm.generate(model, prompt, settings, max_tokens=max_tokens)
    if generation.finish == "time":
        raise LLMTimeout(llm.timeout_message(settings))
    if generation.finish != "stop":
        return None
    return _LABEL.sub("", generation.text.strip()).strip().strip("\"'«»“”").strip()


def translate_sentence(sentence: str, lang: str, *, services, store: TranslationStore) -> Translation:
    """`sentence` in `lang`, checked (kept in `store`); raises `LLMError` when the backend fails."""
    settings = services.settings
    backend = f"{settings.llm_backend}:{settings.llm_model or ''}"
    kept = store.get(sentence, lang, backend)
    if kept is not None:
        return kept
    text = render(sentence, lang, services=services, settings=settings)
    result = judge(text, sentence, lang, services=services)
    store.put(sentence, backend, result)
    return result


def judge(text: str | None, sentence: str, lang: str, *, services) -> Translation:
    """The `Translation` a rendering `text` of `sentence` into `lang` earns: checked only when the
    similarity check, the name check and the word check (English of Arabic) all pass; otherwise
    the reason, with the refused rendering kept as `rough` when it was checked word by word.
    `text` None means the reply was cut. Raises nothing."""
    if text is None:
        result = Translation(None, lang, False, "the translation was cut before its end")
    elif not text or qtext.detect_language(text) != lang:
        result = Translation(None, lang, False, f"the model did not reply in {qtext.LANGUAGE_NAMES[lang]}")
    else:
        check = qverify.check_rendering(text, sentence, embedder=services.embedder)
        invented = unsupported_names(text, sentence, embedder=services.embedder) if check.ok else []
        words = word_check(text, sentence, lang)
        if lang == "en" and qtext.detect_language(sentence) == "ar" and words is None:
            result = Translation(
                None, lang, False, "the dictionaries that check English word by word are not installed"
            )
        elif words is not None and not words.ok:
            # Shown only word-marked, as a rough machine translation that is not checked.
            result = Translation(None, lang, False, words.reason, check=words, rough=text)
        elif not check.ok:
            result = Translation(None, lang, False, check.reason, check=words, rough=text if words else None)
        elif invented:
            note = f"the name «{invented[0]}» is not in the sentence"
            result = Translation(None, lang, False, note, check=words, rough=text if words else None)
        else:
            # An English rendering checked word by word carries the check's measured record: too few
            # of the local model's renderings pass it to certify a rate (qa.wordcheck.MODEL_RECORD).
            note = qwordcheck.record_note() if words is not None else None
            result = Translation(text, lang, True, note, check=words)
    return result


def on_document(translation: Translation, start: int) -> Translation:
    """The translation with its word check's Arabic offsets moved from the sentence to the document
    (the cited sentence starts at `start`)."""
    if translation.check is None:
        return translation
    return replace(translation, check=translation.check.shifted(start))


def translate_answer(answer, *, lang: str | None, services, store: TranslationStore):
    """The answer with a `Translation` on each cited (and closest) sentence not already in `lang`.

    `lang` defaults to the answer's language. A backend failure raises `LLMError` (one sentence).
    """
    lang = lang or answer.answer_lang
    cache: dict[str, Translation] = {}

    def one(citation):
        if qtext.detect_language(citation.quote) == lang:
            return citation
        if citation.quote not in cache:
            cache[citation.quote] = translate_sentence(citation.quote, lang, services=services, store=store)
        return replace(citation, translation=on_document(cache[citation.quote], citation.start))

    return replace(
        answer,
        citations=tuple(one(c) for c in answer.citations),
        closest=tuple(one(c) for c in answer.closest),
    )
