"""Does translating an English question into Arabic (with the LLM) before retrieval help on the seed?

`python -m bench.bench_translate [--limit N]`: for the seed question set's answerable, standalone
English questions, the share whose top evidence sentence holds the gold evidence, asked as is and
as translated by `qa.condense.translate_question`, and the translation time. Writes
bench/results/translate.json. Leaves out: the dev benchmark (bench_retrieval, eval/).
"""

from __future__ import annotations

import argparse
import time

from bench.bench_llm import seed_questions
from bench.common import fresh_assistant, percentiles, save
from qa import condense, llm
from qa.config import SEED_DOCUMENT


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=12, help="English questions to translate")
    args = parser.parse_args(argv)
    assistant = fresh_assistant()
    assistant.ingest([SEED_DOCUMENT], progress=False)
    model = llm.chat_model(assistant.settings, max_tokens=64)
    rows = []
    for q in seed_questions("en", args.limit):
        t0 = time.perf_counter()
        arabic = condense.translate_question(q.question, model=model, settings=assistant.settings)
        ms = (time.perf_counter() - t0) * 1000
        hits = {}
        for label, asked in (("asked", q.question), ("translated", arabic)):
            evidence = assistant.retriever.retrieve(asked).evidence
            hits[label] = bool(evidence) and any(g in evidence[0].text for g in q.evidence)
        rows.append({"id": q.id, "question": q.question, "arabic": arabic, "ms": round(ms), **hits})
        print(rows[-1], flush=True)
    n = len(rows)
    result = {
        "questions": n,
        "top1_asked": round(sum(r["asked"] for r in rows) / n, 3),
        "top1_translated": round(sum(r["translated"] for r in rows) / n, 3),
        "translate_ms": percentiles([r["ms"] for r in rows]),
        "rows": rows,
    }
    path = save("translate", result)
    print({k: v for k, v in result.items() if k != "rows"})
    print(f"written to {path}")


if __name__ == "__main__":
    main()
