"""Benchmark of generated answers: latency, time to first token, faithfulness, and verification calibration.

`python bench/bench_llm.py` indexes the seed article in a temporary Chroma, asks the seed questions
below (English and Arabic) in `extractive` and `generative` mode with the local LLM, and reports
end-to-end latency p50/p95, time to first token, the share of generated answers that pass
verification, and how often the answer contains the gold span (Arabic) or its English gloss.
`--calibrate` instead measures the similarities the verification thresholds are set from.
`--translate` measures whether translating English questions into Arabic before retrieval helps.
Writes bench/results/llm.json (gitignored). Leaves out: the dev benchmark (eval/ measures it).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from qa import text as qtext  # noqa: E402
from qa import verify as qverify  # noqa: E402

SEED = ROOT / "seeds" / "000_30343400e31c82a3.txt"
RESULTS = ROOT / "bench" / "results" / "llm.json"

# (English question, Arabic question, gold sentence index in the seed, gold Arabic span, English gold words)
QUESTIONS = [
    (
        "What did the Kremlin deny?",
        "ماذا نفى الكرملين؟",
        9,
        "لم يبحثا فكرة التّعاون العسكري المباشر",
        "military",
    ),
    ("Who is the Kremlin spokesman?", "من هو المتحدث باسم الكرملين؟", 10, "دميتري بسكوف", "Peskov"),
    ("Who is Kyle Orton?", "من هو كايل أورتون؟", 8, "الخبير في منطقة الشرق الأوسط", "Middle East"),
    (
        "Where would the joint operations room be set up?",
        "أين ستنشأ غرفة العمليات المشتركة؟",
        2,
        "في الأردن",
        "Jordan",
    ),
    ("What did Lavrov and Kerry agree on?", "على ماذا اتفق لافروف وكيري؟", 0, "محاربة داعش والنصرة", "ISIS"),
    (
        "Who is the spokeswoman of the Russian Foreign Ministry?",
        "من هي المتحدثة باسم وزارة الخارجية الروسية؟",
        12,
        "ماريا زاخاروفا",
        "Zakharova",
    ),
    (
        "How long in advance did the Americans want to be told about Russian air operations?",
        "متى طالب الأميركيون بإبلاغهم بتفاصيل العمليات الجوية الروسية؟",
        4,
        "قبل يوم كامل",
        "day",
    ),
    (
        "Which newspaper reported that Kerry went to Moscow to propose joining efforts?",
        "أي صحيفة أفادت بأن كيري توجه إلى موسكو ليقترح توحيد الجهود؟",
        10,
        "واشنطن بوست",
        "Washington Post",
    ),
    (
        "Which website did Russian media sources speak to?",
        "لأي موقع تحدثت مصادر إعلامية روسية؟",
        5,
        "Russia-Now.com",
        "Russia-Now",
    ),
    (
        "Where do armed groups coordinate with terrorists, according to Zakharova?",
        "أين تعمل المجموعات المسلحة بالتنسيق مع الإرهابيين بحسب زاخاروفا؟",
        15,
        "منطقة حلب",
        "Aleppo",
    ),
    (
        "Has Russia's position on the fate of Assad changed?",
        "هل تغير موقف روسيا من مصير الأسد؟",
        11,
        "لم يتغير",
        "not",
    ),
    (
        "In what atmosphere are Lavrov and Kerry working?",
        "في أي جو يعمل لافروف وكيري؟",
        12,
        "جو من التوتر",
        "tension",
    ),
]

# Faithful one-sentence answers, written by hand, for the calibration of the support threshold.
FAITHFUL = [
    (
        9,
        "The Kremlin denied that Putin and Kerry discussed direct military cooperation against terrorists in Syria.",
        "نفى الكرملين أن يكون بوتين وكيري قد بحثا التعاون العسكري المباشر ضد الإرهابيين في سوريا.",
    ),
    (10, "The Kremlin spokesman is Dmitry Peskov.", "المتحدث باسم الكرملين هو دميتري بسكوف."),
    (
        8,
        "Kyle Orton is a Middle East expert at the Henry Jackson Society.",
        "كايل أورتون خبير في منطقة الشرق الأوسط في مؤسسة هنري جاكسون.",
    ),
    (
        2,
        "The joint operations room would be set up in Jordan.",
        "كان من المقترح إنشاء غرفة العمليات المشتركة في الأردن.",
    ),
    (
        0,
        "Lavrov and Kerry agreed to fight ISIS and al-Nusra in Syria relentlessly.",
        "اتفق لافروف وكيري على محاربة داعش والنصرة في سوريا بلا هوادة.",
    ),
    (
        12,
        "The spokeswoman of the Russian Foreign Ministry is Maria Zakharova.",
        "المتحدثة باسم وزارة الخارجية الروسية هي ماريا زاخاروفا.",
    ),
    (
        4,
        "The Americans wanted to be told a full day before any Russian air operation in Syria.",
        "طالب الأميركيون بإبلاغهم قبل يوم كامل بتفاصيل أي عملية جوية روسية.",
    ),
    (
        10,
        "The Washington Post reported that Kerry went to Moscow to propose joining efforts against terrorists.",
        "أفادت صحيفة واشنطن بوست بأن كيري توجه إلى موسكو ليقترح توحيد الجهود.",
    ),
    (
        5,
        "Russian media sources told Russia-Now.com that the reports of a US offer were untrue.",
        "أكدت مصادر إعلامية روسية لموقع Russia-Now.com أن لا صحة للأخبار عن العرض الأميركي.",
    ),
    (
        15,
        "Zakharova said armed groups coordinate with terrorists in the Aleppo area.",
        "قالت زاخاروفا إن مجموعات مسلحة تعمل بالتنسيق مع الإرهابيين في منطقة حلب.",
    ),
    (
        11,
        "The Kremlin said Russia's position on the fate of Assad has not changed.",
        "أكد الكرملين أن موقف روسيا من مصير الأسد لم يتغير.",
    ),
    (12, "Lavrov and Kerry are working in an atmosphere of tension.", "يعمل لافروف وكيري في جو من التوتر."),
]

# English names with the seed sentence that spells them in Arabic; and names the seed never mentions.
NAMES_IN_SEED = [
    ("Kremlin", 9),
    ("Dmitry Peskov", 10),
    ("Kyle Orton", 8),
    ("Henry Jackson Society", 8),
    ("Jordan", 2),
    ("Sergei Lavrov", 0),
    ("John Kerry", 0),
    ("Vladimir Putin", 9),
    ("Maria Zakharova", 12),
    ("Washington Post", 10),
    ("Aleppo", 15),
    ("Bashar al-Assad", 11),
    ("Moscow", 0),
    ("ISIS", 0),
    ("Telegraph", 8),
    ("Nusra Front", 3),
]
NAMES_NOT_IN_SEED = [
    "Boris Johnson",
    "Angela Merkel",
    "Tony Blair",
    "Emmanuel Macron",
    "London",
    "Paris",
    "Reuters",
    "BBC",
    "Ankara",
    "Erdogan",
    "Barack Obama",
    "Benjamin Netanyahu",
    "Cairo",
    "Hezbollah",
    "Sergei Shoigu",
    "Le Monde",
]


def seed_sentences() -> list[str]:
    text = SEED.read_text(encoding="utf-8")
    return [text[s.start : s.end] for s in qtext.sentences(text)]


def _pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, round(q * (len(values) - 1)))] if values else float("nan")


def calibrate(embedder) -> dict:
    """Similarities of faithful vs mismatched answer/evidence pairs, and of names vs evidence spans."""
    sentences = seed_sentences()
    ev = embedder.encode_documents(sentences)
    out = {}
    for lang, col in (("en", 1), ("ar", 2)):
        answers = [row[col] for row in FAITHFUL]
        av = embedder.encode_documents(answers)
        pos = [float(av[i] @ ev[row[0]]) for i, row in enumerate(FAITHFUL)]
        # Mismatched: the answer against every other sentence (9 and 10 say the same thing: skipped).
        same = {9: {10}, 10: {9}}
        neg = [
            float(av[i] @ ev[j])
            for i, row in enumerate(FAITHFUL)
            for j in range(len(sentences))
            if j != row[0] and j not in same.get(row[0], ())
        ]
        out[lang] = {
            "pos_min": min(pos),
            "pos_p10": _pct(pos, 0.1),
            "neg_p95": _pct(neg, 0.95),
            "neg_max": max(neg),
        }
    pos = [qverify.name_similarity(n, [sentences[i]], embedder=embedder)[0] for n, i in NAMES_IN_SEED]
    # An invented name against each sentence alone (as verification sees it) and the best over all.
    neg = [
        max(qverify.name_similarity(n, [s], embedder=embedder)[0] for s in sentences)
        for n in NAMES_NOT_IN_SEED
    ]
    out["names"] = {
        "pos": dict(zip([n for n, _ in NAMES_IN_SEED], [round(p, 3) for p in pos])),
        "neg_best_over_sentences": dict(zip(NAMES_NOT_IN_SEED, [round(p, 3) for p in neg])),
        "pos_min": min(pos),
        "neg_max": max(neg),
    }
    return out


def _assistant(tmp: Path):
    from qa.assistant import Assistant
    from qa.config import Settings

    docs = tmp / "docs"
    docs.mkdir()
    shutil.copy(SEED, docs / SEED.name)
    settings = Settings(_env_file=None, chroma_path=tmp / "chroma", feedback_path=tmp / "fb.jsonl")
    assistant = Assistant(settings)
    assistant.ingest([docs], progress=False)
    return assistant


def _contains_gold(answer: str, lang: str, gold_ar: str, gold_en: str) -> bool:
    if qtext.normalize(gold_ar) in qtext.normalize(answer):
        return True
    return lang == "en" and gold_en.casefold() in answer.casefold()


def run_llm(assistant, *, langs: list[str], limit: int) -> dict:
    """Ask every seed question in both modes; time generated answers end to end and to first token."""
    from qa import llm

    llm.register(assistant)
    rows = []
    for en, ar, _sentence, gold_ar, gold_en in QUESTIONS[:limit]:
        for lang in langs:
            question = en if lang == "en" else ar
            extractive = assistant.ask(question, mode="extractive")
            t0 = time.perf_counter()
            first = None
            final = None
            for item in assistant.stream(question, mode="generative"):
                if isinstance(item, str):
                    first = first if first is not None else time.perf_counter() - t0
                else:
                    final = item
            total = time.perf_counter() - t0
            ex_verdict = qverify.verify(
                extractive.answer,
                [c.quote for c in extractive.citations],
                question=question,
                embedder=assistant.embedder,
            )
            row = {
                "lang": lang,
                "question": question,
                "mode": final.mode,
                "abstained": final.abstained,
                "note": final.note,
                "answer": final.answer,
                "seconds": round(total, 2),
                "first_token_s": round(first, 2) if first is not None else None,
                "generated_shown": final.mode == "generative" and not final.abstained,
                "gold_in_generative": _contains_gold(final.answer, lang, gold_ar, gold_en),
                "gold_in_extractive": _contains_gold(extractive.answer, lang, gold_ar, gold_en),
                "extractive_verified": ex_verdict.ok,
                "draft": final.timings_ms.get("draft"),
            }
            rows.append(row)
            print(f"{lang} {row['seconds']:6.1f}s {row['mode']:20} {final.answer[:110]!r}", flush=True)
    summary = {}
    for lang in langs:
        sub = [r for r in rows if r["lang"] == lang]
        gen = [r["seconds"] for r in sub if r["first_token_s"] is not None]
        ttft = [r["first_token_s"] for r in sub if r["first_token_s"] is not None]
        summary[lang] = {
            "n": len(sub),
            "latency_p50_s": round(statistics.median(gen), 2) if gen else None,
            "latency_p95_s": round(_pct(gen, 0.95), 2) if gen else None,
            "first_token_p50_s": round(statistics.median(ttft), 2) if ttft else None,
            "first_token_p95_s": round(_pct(ttft, 0.95), 2) if ttft else None,
            "generative_verified_rate": round(sum(r["generated_shown"] for r in sub) / len(sub), 3),
            "extractive_verified_rate": round(sum(r["extractive_verified"] for r in sub) / len(sub), 3),
            "gold_in_generative_rate": round(sum(r["gold_in_generative"] for r in sub) / len(sub), 3),
            "gold_in_extractive_rate": round(sum(r["gold_in_extractive"] for r in sub) / len(sub), 3),
        }
    return {"summary": summary, "rows": rows}


def run_translate(assistant, *, limit: int) -> dict:
    """Top-1 evidence sentence hit rate for English questions, as asked and translated into Arabic."""
    from qa import llm

    sentences = seed_sentences()
    rows = []
    for en, _ar, gold_sentence, _g, _e in QUESTIONS[:limit]:
        t0 = time.perf_counter()
        arabic = llm.translate_question(en, settings=assistant.settings)
        seconds = time.perf_counter() - t0
        hits = {}
        for label, q in (("asked", en), ("translated", arabic)):
            r = assistant.retriever.retrieve(q)
            hits[label] = bool(r.evidence) and r.evidence[0].text == sentences[gold_sentence]
        rows.append({"question": en, "arabic": arabic, "seconds": round(seconds, 2), **hits})
        print(rows[-1], flush=True)
    n = len(rows)
    return {
        "top1_asked": round(sum(r["asked"] for r in rows) / n, 3),
        "top1_translated": round(sum(r["translated"] for r in rows) / n, 3),
        "translate_seconds_p50": round(statistics.median(r["seconds"] for r in rows), 2),
        "rows": rows,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calibrate", action="store_true", help="only measure the verification thresholds")
    parser.add_argument("--translate", action="store_true", help="also measure question translation")
    parser.add_argument("--lang", choices=["en", "ar", "both"], default="both")
    parser.add_argument("--limit", type=int, default=len(QUESTIONS), help="questions per language")
    args = parser.parse_args(argv)
    results = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {}
    if args.calibrate:
        from qa.config import Settings
        from qa.embeddings import load_embedder

        s = Settings(_env_file=None)
        t0 = time.perf_counter()
        results["calibration"] = calibrate(load_embedder(s.embedding_model, s.models_dir, s.threads))
        results["calibration"]["seconds"] = round(time.perf_counter() - t0, 1)
        print(json.dumps(results["calibration"], indent=1, ensure_ascii=False))
    with tempfile.TemporaryDirectory() as tmp:
        if not args.calibrate:
            assistant = _assistant(Path(tmp))
            langs = ["en", "ar"] if args.lang == "both" else [args.lang]
            results["llm"] = run_llm(assistant, langs=langs, limit=args.limit)
            print(
                f"\n{'lang':4} {'n':>3} {'p50 s':>6} {'p95 s':>6} {'ttft50':>6} {'ttft95':>6} {'gen ok':>6} {'ext ok':>6} {'gold gen':>8} {'gold ext':>8}"
            )
            for lang, s in results["llm"]["summary"].items():
                print(
                    f"{lang:4} {s['n']:3} {s['latency_p50_s']:6} {s['latency_p95_s']:6} {s['first_token_p50_s']:6} "
                    f"{s['first_token_p95_s']:6} {s['generative_verified_rate']:6} {s['extractive_verified_rate']:6} "
                    f"{s['gold_in_generative_rate']:8} {s['gold_in_extractive_rate']:8}"
                )
            if args.translate:
                results["translate"] = run_translate(assistant, limit=args.limit)
                print({k: v for k, v in results["translate"].items() if k != "rows"})
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=1, ensure_ascii=False))
    print(f"wrote {RESULTS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
