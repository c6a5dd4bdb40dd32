"""The seed article through the word-checked paths: what an English reader is shown as checked.

`python -m bench.wordcheck_seed [--questions N]`: each sentence of the seed article translated by
the configured LLM into English (`qa.translate.render`, the prompt of "Translate cited sentences")
and judged by the shipped checks (`qa.translate.translate_sentence`'s: similarity, numbers, names,
and the word check), and the seed set's English questions answered by the assistant with the short
answer on: the short answer, whether it is labelled checked, and its word check. Each checked
rendering is then read by a person against the Arabic (eval/calibration/seed-verdicts.md).
Writes bench/results/wordcheck-seed.json. Set QA_LLM_TIMEOUT_S=600 on a busy machine.
"""

from __future__ import annotations

import argparse
import time

from bench.bench_llm import seed_questions
from bench.common import fresh_assistant, save
from qa import text as qtext
from qa.config import SEED_DOCUMENT
from qa.translate import TranslationStore, translate_sentence


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=int, default=12, help="English seed questions to ask")
    parser.add_argument(
        "--store", default="/tmp/wordcheck-seed.sqlite", help="translation store (a fresh one)"
    )
    args = parser.parse_args(argv)
    assistant = fresh_assistant(short_answer="on")
    assistant.ingest([SEED_DOCUMENT], progress=False)
    store = TranslationStore(args.store)
    text = SEED_DOCUMENT.read_text(encoding="utf-8")
    sentences = []
    for span in qtext.sentences(text):
        sentence = text[span.start : span.end]
        t0 = time.perf_counter()
        t = translate_sentence(sentence, "en", services=assistant, store=store)
        row = {
            "start": span.start,
            "arabic": sentence,
            "checked": t.verified,
            "text": t.text,
            "rough": t.rough,
            "note": t.note,
            "share": t.check.share if t.check else None,
            "unsupported": [w.text for w in t.check.words if w.kind != "function" and not w.supported]
            if t.check
            else [],
            "ms": round((time.perf_counter() - t0) * 1000),
        }
        sentences.append(row)
        print(row, flush=True)
    answers = []
    for q in seed_questions("en", args.questions):
        a = assistant.ask(q.question)
        s = a.short_answer
        row = {
            "id": q.id,
            "question": q.question,
            "golds": list(q.answers),
            "short": s.text if s else None,
            "checked": bool(s and s.verified),
            "span": s.quote if s else None,
            "word_check": s.check.to_dict() if s and s.check else None,
            "note": a.note,
            "translations": [
                {
                    "n": c.n,
                    "checked": c.translation.verified,
                    "text": c.translation.text,
                    "rough": c.translation.rough,
                }
                for c in a.citations
                if c.translation
            ],
            "glossed": [c.n for c in a.citations if c.gloss],
        }
        answers.append(row)
        print(row, flush=True)
    out = {
        "sentences": sentences,
        "checked_translations": sum(r["checked"] for r in sentences),
        "answers": answers,
        "checked_short_answers": sum(r["checked"] for r in answers),
        "english_readers_with_translation_or_gloss": sum(
            all(
                c in r["glossed"] or any(t["n"] == c and t["checked"] for t in r["translations"]) for c in {1}
            )
            for r in answers
        ),
    }
    print(save("wordcheck-seed", out))


if __name__ == "__main__":
    main()
