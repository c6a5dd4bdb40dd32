"""Generated answers on the seed article: end-to-end latency, time to first token, how many are shown.

`python -m bench.bench_llm [--lang en|ar|both] [--limit N]` indexes the seed article in a temporary
Chroma and asks the first N answerable, standalone questions per language of the seed question set
(eval/questions/seed.jsonl) in `generative` mode with the configured LLM (the local Qwen by
default). Per language: p50/p95 of the first token, the LLM and the whole answer (from
`Answer.timings_ms`), the share of generated answers shown (verified, not replaced by the quotes)
and the share that contain a gold answer. Writes bench/results/llm.json. Run it on an idle
machine: another process on the 2 cores slows llama.cpp several times. Leaves out: the
calibration of the checks (bench/calibrate_verify.py) and answer quality at large (eval/).
"""

from __future__ import annotations

import argparse
import time

from bench.common import SEED_SET, fresh_assistant, percentiles, save
from eval import questions
from qa import text as qtext
from qa.config import SEED_DOCUMENT


def seed_questions(lang: str, limit: int) -> list[questions.Question]:
    """The first `limit` answerable questions in `lang` that are not follow-ups."""
    qs = questions.load(SEED_SET).questions
    return [q for q in qs if q.lang == lang and not q.unanswerable and not q.follows][:limit]


def contains_gold(answer: str, gold: tuple[str, ...]) -> bool:
    norm = qtext.normalize(answer)
    return any(qtext.normalize(g) in norm for g in gold)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lang", choices=["en", "ar", "both"], default="both")
    parser.add_argument("--limit", type=int, default=6, help="questions per language")
    args = parser.parse_args(argv)
    assistant = fresh_assistant()
    assistant.ingest([SEED_DOCUMENT], progress=False)
    langs = ["en", "ar"] if args.lang == "both" else [args.lang]
    rows = []
    for lang in langs:
        for q in seed_questions(lang, args.limit):
            t0 = time.perf_counter()
            stream = assistant.stream(q.question, mode="generative")
            text = "".join(stream)
            answer = stream.answer()
            wall_ms = (time.perf_counter() - t0) * 1000
            t = answer.timings_ms
            rows.append(
                {
                    "id": q.id,
                    "lang": lang,
                    "mode": answer.mode,
                    "note": answer.note,
                    "draft": text,
                    "answer": answer.answer,
                    "first_token_ms": t.get("first_token"),
                    "llm_ms": t.get("llm"),
                    "total_ms": t.get("total", wall_ms),
                    "shown": answer.mode == "generative" and not answer.abstained,
                    "gold_in_answer": contains_gold(answer.answer, q.answers),
                }
            )
            print(
                f"{q.id:7} {rows[-1]['total_ms'] / 1000:6.1f} s {answer.mode:20} {answer.answer[:90]!r}",
                flush=True,
            )
    summary = {}
    for lang in langs:
        mine = [r for r in rows if r["lang"] == lang]
        summary[lang] = {
            "questions": len(mine),
            **{
                key: percentiles([r[key] for r in mine if r[key] is not None])
                for key in ("first_token_ms", "llm_ms", "total_ms")
            },
            "shown_rate": round(sum(r["shown"] for r in mine) / len(mine), 3) if mine else None,
            "gold_in_answer_rate": round(sum(r["gold_in_answer"] for r in mine) / len(mine), 3)
            if mine
            else None,
        }
    path = save("llm", {"backend": assistant.settings.llm_backend, "summary": summary, "rows": rows})
    for lang, s in summary.items():
        print(
            f"{lang}: first token p50 {s['first_token_ms'].get('p50')} ms, total p50 {s['total_ms'].get('p50')} "
            f"p95 {s['total_ms'].get('p95')} ms, shown {s['shown_rate']}, gold {s['gold_in_answer_rate']}"
        )
    print(f"written to {path}")


if __name__ == "__main__":
    main()
